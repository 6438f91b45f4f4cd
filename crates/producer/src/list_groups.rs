//! Kafka's ListGroups (API key 16, version 0) spoken directly to each broker, for
//! plaintext clusters. librdkafka's group listing (`rd_kafka_list_groups`, the only one
//! rdkafka 0.38 exposes without `unsafe`) follows every ListGroups with DescribeGroups;
//! tansu 0.6 on SQLite storage fails DescribeGroups for any group that has joined (it
//! reads the stored group detail back as a JSON string) and drops the connection, so
//! the whole listing fails there. ListGroups alone is all discovery needs.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const LIST_GROUPS: i16 = 16;
/// A response larger than this is refused (a cluster with ~100,000 group names).
const MAX_RESPONSE: usize = 16 << 20;

/// The request: size, header v1 (api key, version 0, correlation id, client id), and an
/// empty v0 body.
fn request(correlation: i32, client_id: &str) -> Vec<u8> {
    let id = client_id.as_bytes();
    let id_len = id.len().min(i16::MAX as usize);
    let mut body = Vec::with_capacity(10 + id_len);
    body.extend_from_slice(&LIST_GROUPS.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&correlation.to_be_bytes());
    body.extend_from_slice(&(id_len as i16).to_be_bytes());
    body.extend_from_slice(&id[..id_len]);
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads a v0 response (after its size): correlation id, error code, then the groups
/// as (group id, protocol type).
fn parse(correlation: i32, mut b: &[u8]) -> Result<Vec<String>, String> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if b.len() < n {
            return Err("truncated ListGroups response".into());
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head)
    }
    fn int(b: &mut &[u8], n: usize) -> Result<i64, String> {
        let bytes = take(b, n)?;
        Ok(bytes
            .iter()
            .fold(if bytes[0] & 0x80 != 0 { -1i64 } else { 0 }, |acc, x| {
                (acc << 8) | i64::from(*x)
            }))
    }
    fn string(b: &mut &[u8]) -> Result<String, String> {
        let len = int(b, 2)?;
        if len < 0 {
            return Ok(String::new());
        }
        let bytes = take(b, len as usize)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a group id is not UTF-8".to_owned())
    }
    if int(&mut b, 4)? != i64::from(correlation) {
        return Err("ListGroups response to another request".into());
    }
    let code = int(&mut b, 2)?;
    if code != 0 {
        return Err(format!("ListGroups refused with error code {code}"));
    }
    let n = int(&mut b, 4)?.max(0) as usize;
    let mut groups = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        groups.push(string(&mut b)?);
        let _protocol_type = string(&mut b)?;
    }
    Ok(groups)
}

/// The groups one broker coordinates.
fn list_one(broker: &str, client_id: &str, timeout: Duration) -> Result<Vec<String>, String> {
    let addr = broker
        .to_socket_addrs()
        .map_err(|e| format!("{broker}: {e}"))?
        .next()
        .ok_or_else(|| format!("{broker}: no address"))?;
    let io = |e: std::io::Error| format!("{broker}: {e}");
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    let correlation = 1;
    s.write_all(&request(correlation, client_id)).map_err(io)?;
    let mut size = [0u8; 4];
    s.read_exact(&mut size).map_err(io)?;
    let size = i32::from_be_bytes(size);
    if size < 0 || size as usize > MAX_RESPONSE {
        return Err(format!("{broker}: ListGroups response of {size} bytes"));
    }
    let mut body = vec![0u8; size as usize];
    s.read_exact(&mut body).map_err(io)?;
    parse(correlation, &body).map_err(|e| format!("{broker}: {e}"))
}

/// Every group of every broker in `brokers` (`host:port`), deduplicated; an error names
/// the first broker that failed.
pub(crate) fn list_groups(
    brokers: &[String],
    client_id: &str,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let mut all = Vec::new();
    for b in brokers {
        all.extend(list_one(b, client_id, timeout)?);
    }
    all.sort();
    all.dedup();
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_a_list_groups_v0_frame() {
        let r = request(7, "sm");
        assert_eq!(
            r,
            [0, 0, 0, 12, 0, 16, 0, 0, 0, 0, 0, 7, 0, 2, b's', b'm'],
            "size 12; api key 16; version 0; correlation 7; client id \"sm\""
        );
    }

    #[test]
    fn a_response_gives_the_group_ids() {
        let mut b = vec![0, 0, 0, 7, 0, 0, 0, 0, 0, 2];
        for (g, p) in [("analytics", "consumer"), ("simple", "")] {
            b.extend_from_slice(&(g.len() as i16).to_be_bytes());
            b.extend_from_slice(g.as_bytes());
            b.extend_from_slice(&(p.len() as i16).to_be_bytes());
            b.extend_from_slice(p.as_bytes());
        }
        assert_eq!(parse(7, &b).unwrap(), ["analytics", "simple"]);
        assert!(parse(8, &b).unwrap_err().contains("another request"));
        assert!(parse(7, &b[..b.len() - 3])
            .unwrap_err()
            .contains("truncated"));
        let refused = [0, 0, 0, 7, 0, 29, 0, 0, 0, 0];
        assert!(parse(7, &refused).unwrap_err().contains("error code 29"));
    }
}
