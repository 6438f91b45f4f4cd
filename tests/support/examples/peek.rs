//! Debug aid for the real-broker suite: `peek <bootstrap> <topic> produce <n>` sends n
//! small records; `peek <bootstrap> <topic> consume <n>` counts what a consumer reads.
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::time::{Duration, Instant};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args[4].parse().unwrap();
    if args[3] == "produce" {
        let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &args[1])
            .set("linger.ms", "20")
            .set(
                "compression.type",
                std::env::var("COMP").unwrap_or("none".into()),
            )
            .create()
            .unwrap();
        let payload = vec![b'x'; 200];
        for i in 0..n {
            let key = i.to_string();
            loop {
                let mut rec = BaseRecord::to(&args[2]).key(&key).payload(&payload);
                if std::env::var_os("HEADERS").is_some() {
                    use rdkafka::message::{Header, OwnedHeaders};
                    rec = rec.headers(
                        OwnedHeaders::new()
                            .insert(Header {
                                key: "message_id",
                                value: Some("0123456789abcdef0123456789abcdef"),
                            })
                            .insert(Header {
                                key: "source_id",
                                value: Some("load"),
                            }),
                    );
                }
                match p.send(rec) {
                    Ok(()) => break,
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
        p.flush(Duration::from_secs(60)).unwrap();
        println!("produced {n}");
    } else if args[3] == "at" {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::{Offset, TopicPartitionList};
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &args[1])
            .set("group.id", "peek")
            .set(
                "max.partition.fetch.bytes",
                std::env::var("MPFB").unwrap_or("1048576".into()),
            )
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&args[2], 0, Offset::Offset(n as i64))
            .unwrap();
        c.assign(&tpl).unwrap();
        let t = Instant::now();
        let mut got = 0;
        while t.elapsed() < Duration::from_secs(15) {
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(_)) => got += 1,
                Some(Err(e)) => println!("err {e}"),
                None => {}
            }
        }
        println!("from {n}: {got}");
    } else {
        let t = Instant::now();
        let topics: Vec<&str> = args[2].split(',').collect();
        let recs = test_support::kafka::consume(&args[1], &topics, n, Duration::from_secs(30));
        println!("consumed {} in {:?}", recs.len(), t.elapsed());
    }
}
