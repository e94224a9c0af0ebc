//! The bank workload's checks: transfers move money between accounts inside MULTI/EXEC
//! (DECRBY one, INCRBY another), so every read of all accounts in one MULTI/EXEC must see every
//! account (`missing-account`) and the constant total (`wrong-total`). A transfer's own replies
//! must be the two new balances, i.e. integers (`bad-reply`).

use super::{Anomaly, Verdict};
use crate::history::{Call, Op, Outcome, Ret};

/// The name of the workload this checker reads.
pub const WORKLOAD: &str = "bank";

/// Checks the bank workload in `history`, whose accounts always hold `total` together.
pub fn check(history: &[Op], accounts: usize, total: i64) -> Verdict {
    let ops: Vec<&Op> = history.iter().filter(|o| o.workload == WORKLOAD).collect();
    let mut anomalies = Vec::new();
    let mut report = |kind: &str, detail: String, op: &Op| {
        if anomalies.iter().filter(|a: &&Anomaly| a.kind == kind).count() < 5 {
            anomalies.push(Anomaly { kind: kind.into(), key: op.key.clone(), detail, ops: vec![op.clone()] });
        }
    };
    for op in ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        match (&op.call, &op.ret) {
            (Call::ReadAll, Some(Ret::Balances(b))) => {
                if b.len() != accounts || b.iter().any(|v| v.is_none()) {
                    report("missing-account", format!("read #{} saw {b:?}: an account is missing", op.index), op);
                } else {
                    let sum: i64 = b.iter().flatten().sum();
                    if sum != total {
                        report(
                            "wrong-total",
                            format!("read #{} saw {b:?}, total {sum} instead of {total}", op.index),
                            op,
                        );
                    }
                }
            }
            (Call::ReadAll, _) => report("bad-reply", format!("read #{} has no balances", op.index), op),
            (Call::Transfer { .. }, Some(Ret::Balances(b))) if b.len() == 2 && b.iter().all(|v| v.is_some()) => {}
            (Call::Transfer { .. }, ret) => {
                report("bad-reply", format!("transfer #{} answered {ret:?}, not two balances", op.index), op)
            }
            _ => {}
        }
    }
    Verdict::new(WORKLOAD, &ops, anomalies, false, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testing::{indexed, op};
    use crate::checker::Validity;

    fn read(b: Vec<Option<i64>>) -> Op {
        op(WORKLOAD, 0, "bank", Call::ReadAll, Outcome::Ok, Some(Ret::Balances(b)), 0, 1)
    }
    fn transfer(outcome: Outcome) -> Op {
        let ret = (outcome == Outcome::Ok).then_some(Ret::Balances(vec![Some(90), Some(110)]));
        op(WORKLOAD, 1, "bank", Call::Transfer { from: 0, to: 1, amount: 10 }, outcome, ret, 0, 1)
    }

    #[test]
    fn constant_totals_pass() {
        let v = check(
            &indexed(vec![
                read(vec![Some(100), Some(100)]),
                transfer(Outcome::Ok),
                transfer(Outcome::Info),
                read(vec![Some(90), Some(110)]),
            ]),
            2,
            200,
        );
        assert_eq!(v.validity, Validity::Valid);
        assert_eq!(v.counts.total(), 4);
    }

    #[test]
    fn a_half_applied_transfer_or_lost_account_is_caught() {
        let v = check(&indexed(vec![read(vec![Some(90), Some(100)])]), 2, 200);
        assert!(v.has("wrong-total"));
        let v = check(&indexed(vec![read(vec![Some(100), None])]), 2, 200);
        assert!(v.has("missing-account"));
    }
}
