//! Model-based property test: random operation sequences against a simple reference (one
//! `VecDeque` per priority), in every overflow strategy, with count and byte bounds.

use std::collections::VecDeque;

use proptest::prelude::*;
use queue::{priority_index, OverflowStrategy, PriorityQueue, PushError, QueueConfig, PRIORITIES};

use crate::Item;

#[derive(Debug, Clone)]
enum Op {
    Push { priority: usize, size: usize },
    Pop,
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..4, 0usize..40).prop_map(|(priority, size)| Op::Push { priority, size }),
        2 => Just(Op::Pop),
        1 => Just(Op::Drain),
    ]
}

/// The reference: obviously correct, slow.
struct Model {
    lanes: [VecDeque<Item>; 4],
    max_items: usize,
    max_bytes: Option<u64>,
    strategy: OverflowStrategy,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Accepted(Vec<u64>),
    Full(u64),
    TooLarge(u64),
}

impl Model {
    fn len(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum()
    }
    fn bytes(&self) -> u64 {
        self.lanes.iter().flatten().map(|i| i.size as u64).sum()
    }
    fn fits(&self, extra_items: usize, extra_bytes: u64) -> bool {
        self.len() + extra_items <= self.max_items
            && self
                .max_bytes
                .is_none_or(|m| self.bytes() + extra_bytes <= m)
    }
    fn push(&mut self, item: Item) -> Outcome {
        if self.max_bytes.is_some_and(|m| item.size as u64 > m) {
            return Outcome::TooLarge(item.id);
        }
        let mut evicted = Vec::new();
        if !self.fits(1, item.size as u64) {
            if self.strategy != OverflowStrategy::DropOldest {
                return Outcome::Full(item.id);
            }
            // Try evicting lowest-first, oldest-first, never above the incoming priority.
            let mut trial = self.lanes.clone();
            let mut ok = false;
            'outer: for lane in 0..=priority_index(item.priority) {
                while let Some(v) = trial[lane].pop_front() {
                    evicted.push(v.id);
                    let len: usize = trial.iter().map(VecDeque::len).sum();
                    let bytes: u64 = trial.iter().flatten().map(|i| i.size as u64).sum();
                    if len < self.max_items
                        && self.max_bytes.is_none_or(|m| bytes + item.size as u64 <= m)
                    {
                        ok = true;
                        break 'outer;
                    }
                }
            }
            if !ok {
                return Outcome::Full(item.id);
            }
            self.lanes = trial;
        }
        self.lanes[priority_index(item.priority)].push_back(item);
        Outcome::Accepted(evicted)
    }
    fn pop(&mut self) -> Option<Item> {
        self.lanes.iter_mut().rev().find_map(VecDeque::pop_front)
    }
}

fn strategy() -> impl Strategy<Value = OverflowStrategy> {
    prop_oneof![
        Just(OverflowStrategy::DropOldest),
        Just(OverflowStrategy::DropNewest),
        Just(OverflowStrategy::Block),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn queue_matches_the_reference(
        ops in prop::collection::vec(op(), 1..200),
        max_items in 1usize..12,
        max_bytes in prop::option::of(1u64..200),
        strategy in strategy(),
    ) {
        let q = PriorityQueue::new(QueueConfig { max_items, max_bytes, overflow: strategy, ..QueueConfig::default() });
        let mut model = Model { lanes: Default::default(), max_items, max_bytes, strategy };
        let mut next_id = 0u64;
        let mut accepted = 0u64;
        let mut out = 0u64;
        for op in ops {
            match op {
                Op::Push { priority, size } => {
                    next_id += 1;
                    let item = Item { id: next_id, priority: PRIORITIES[priority], size };
                    let expected = model.push(item);
                    let got = match q.try_push(item) {
                        Ok(evicted) => Outcome::Accepted(evicted.iter().map(|i| i.id).collect()),
                        Err(PushError::Full(i)) => Outcome::Full(i.id),
                        Err(PushError::TooLarge(i)) => Outcome::TooLarge(i.id),
                        Err(other) => panic!("unexpected {other:?}"),
                    };
                    if let Outcome::Accepted(ev) = &got {
                        accepted += 1;
                        out += ev.len() as u64;
                    }
                    prop_assert_eq!(got, expected);
                }
                Op::Pop => {
                    let got = q.try_pop();
                    if got.is_some() { out += 1; }
                    prop_assert_eq!(got, model.pop());
                }
                Op::Drain => {
                    let got: Vec<u64> = q.drain().iter().map(|i| i.id).collect();
                    out += got.len() as u64;
                    let mut expected = Vec::new();
                    while let Some(i) = model.pop() { expected.push(i.id); }
                    prop_assert_eq!(got, expected);
                }
            }
            prop_assert_eq!(q.len(), model.len());
            prop_assert_eq!(q.bytes(), model.bytes());
            prop_assert!(q.len() <= max_items);
            prop_assert!(max_bytes.is_none_or(|m| q.bytes() <= m));
            // Conservation: every accepted record is held or came back out.
            prop_assert_eq!(accepted, out + q.len() as u64);
        }
    }
}
