//! Pool member selection (RFC 5356), with RSPLIB's model where the RFC is
//! loose (spec digest §6; RSPLIB `poolpolicy-template_impl.h`).
//!
//! Two families, as in RSPLIB:
//!
//! * **Ordered** (RR, WRR, PRIO, LU, LUD, PLU, PLUD, LU-DPF, LUD-DPF): the
//!   pool's PEs are kept in an order given by a policy key and, as the last
//!   tie-break, a per-pool sequence number. A resolution returns the first
//!   `n` PEs of that order; then the first `max_increment` of them (by
//!   default one) get a fresh sequence number (moving them behind their
//!   equals) and their policy counters advance. With the default this is the
//!   RFC's round robin: the head advances by one PE per request.
//! * **Weighted** (RAND, WRAND, RLU, RPLU, RLUD, RPLUD, WRAND-DPF): `n`
//!   distinct PEs drawn at random without replacement, each with probability
//!   proportional to its weight (RAND: 1; WRAND: its weight; the randomized
//!   least-used family: `0xFFFFFFFF` minus its load terms, at least 1).
//!
//! Deliberate differences from RSPLIB 3.4.4, all towards RFC 5356, unless
//! [`Compat::Rsplib`] is chosen (then RSPLIB's answers are reproduced
//! exactly for every deterministic policy):
//!
//! * RSPLIB runs a policy's update hook twice per selection (once explicitly,
//!   once again when it re-links the PE into its selection tree), once when a
//!   PE is added and once when a re-registration changes its values. We run it
//!   once per selection and never on add, so a new PE starts with degradation
//!   0 and a WRR PE is chosen `weight` times per round, as RFC 5356 §4.1.2 and
//!   §4.2.2 describe.
//! * RSPLIB never raises the degradation of its randomized degradation
//!   policies (0xB0001002, 0xB0001004); we raise it like LUD's, which is what
//!   their names promise.

use rserpool_wire::{Policy, PolicyType};

/// Which selection mechanism a policy uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// First `n` PEs of a sort order.
    Ordered,
    /// Weighted random draws without replacement.
    Weighted,
}

/// Which selection semantics to follow where RFC 5356 and RSPLIB differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compat {
    /// RFC 5356: counters advance once per selection, start at zero.
    #[default]
    Rfc,
    /// RSPLIB 3.4.4, bug for bug (see the module documentation).
    Rsplib,
}

/// The largest load / weight value (100 %).
pub const MAX_VALUE: u64 = 0xffff_ffff;

/// The per-PE state a policy reads and updates, compacted to 20 bytes: the
/// registered values reduced to what the keys need, two counters whose
/// meaning depends on the policy, and the sequence number.
///
/// | policy | `a` | `b` | `c0` | `c1` |
/// |---|---|---|---|---|
/// | WRR | weight | - | round | selections left in the round |
/// | LUD, PLUD, RLUD, RPLUD | load | load degradation | degradation | - |
/// | LU-DPF | load | distance penalty | - | - |
/// | LUD-DPF | load | load degradation | degradation | distance penalty |
/// | WRAND-DPF | penalised weight | - | - | - |
/// | others | first value | second value | - | - |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyState {
    /// First value (see the table).
    pub a: u32,
    /// Second value.
    pub b: u32,
    /// First counter.
    pub c0: u32,
    /// Second counter (or a static term).
    pub c1: u32,
    /// Sequence number: the last tie-break of every ordered policy.
    pub seq: u32,
}

impl PolicyState {
    /// WRR: the round this PE is in.
    pub const fn round(&self) -> u32 {
        self.c0
    }

    /// WRR: selections left in this round.
    pub const fn virtual_counter(&self) -> u32 {
        self.c1
    }

    /// Degradation policies: load degradation accumulated since the last
    /// (re-)registration.
    pub const fn degradation(&self) -> u32 {
        self.c0
    }
}

fn sat(v: u64) -> u64 {
    v.min(MAX_VALUE)
}

/// The policy of a pool, reduced to what selection needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind(pub PolicyType);

impl Kind {
    /// The kind of a known policy.
    pub fn of(p: &Policy) -> Self {
        Self(p.policy_type())
    }

    /// The selection family.
    pub fn family(self) -> Family {
        match self.0 {
            PolicyType::RANDOM
            | PolicyType::WEIGHTED_RANDOM
            | PolicyType::RANDOMIZED_LEAST_USED
            | PolicyType::RANDOMIZED_PRIORITY_LEAST_USED
            | PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION
            | PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION
            | PolicyType::WEIGHTED_RANDOM_DPF => Family::Weighted,
            _ => Family::Ordered,
        }
    }

    /// How many of the selected PEs advance their state per request when the
    /// operator did not say (RSPLIB's per-policy default: 0 for RAND, WRAND
    /// and WRAND-DPF, whose state never changes, 1 for all others).
    pub fn default_max_increment(self) -> usize {
        match self.0 {
            PolicyType::RANDOM | PolicyType::WEIGHTED_RANDOM | PolicyType::WEIGHTED_RANDOM_DPF => 0,
            _ => 1,
        }
    }

    fn uses_degradation(self) -> bool {
        matches!(
            self.0,
            PolicyType::LEAST_USED_DEGRADATION
                | PolicyType::PRIORITY_LEAST_USED_DEGRADATION
                | PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION
                | PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION
                | PolicyType::LEAST_USED_DEGRADATION_DPF
        )
    }

    /// Reduces registered values (wire order) to `(a, b, extra)`.
    fn compact(self, v: [u32; 4]) -> (u32, u32, u32) {
        let sat32 = |x: u64| u32::try_from(x.min(MAX_VALUE)).unwrap_or(u32::MAX);
        match self.0 {
            // load, load_dpf, distance: penalty = distance * load_dpf.
            PolicyType::LEAST_USED_DPF => (v[0], 0, sat32(u64::from(v[1]) * u64::from(v[2]))),
            // load, load_degradation, load_dpf, distance.
            PolicyType::LEAST_USED_DEGRADATION_DPF => {
                (v[0], v[1], sat32(u64::from(v[2]) * u64::from(v[3])))
            }
            // weight, weight_dpf, distance: the drawing weight is
            // weight - round(weight * distance * weight_dpf / 0xFFFFFFFF).
            PolicyType::WEIGHTED_RANDOM_DPF => {
                let (w, dpf, dist) = (u128::from(v[0]), u128::from(v[1]), u128::from(v[2]));
                let max = u128::from(MAX_VALUE);
                let penalty = (w * dist * dpf + max / 2) / max;
                let value = if penalty > w { 1 } else { w - penalty };
                (u32::try_from(value.min(max)).unwrap_or(u32::MAX), 0, 0)
            }
            _ => (v[0], v[1], 0),
        }
    }

    /// Ordered family: the primary sort key (ascending; the sequence number
    /// breaks ties).
    pub fn key(self, s: &PolicyState) -> u64 {
        let (a, b) = (u64::from(s.a), u64::from(s.b));
        let deg = u64::from(s.degradation());
        match self.0 {
            PolicyType::WEIGHTED_ROUND_ROBIN => {
                (u64::from(s.round()) << 32) | u64::from(s.virtual_counter())
            }
            // Higher priority first.
            PolicyType::PRIORITY => MAX_VALUE - a,
            PolicyType::LEAST_USED => a,
            PolicyType::LEAST_USED_DEGRADATION => sat(a + deg),
            PolicyType::PRIORITY_LEAST_USED => sat(a + b),
            PolicyType::PRIORITY_LEAST_USED_DEGRADATION => sat(a + b + deg),
            PolicyType::LEAST_USED_DPF => sat(a + b),
            PolicyType::LEAST_USED_DEGRADATION_DPF => sat(a + deg + u64::from(s.c1)),
            // Round robin (and anything ordered without a key).
            _ => 0,
        }
    }

    /// Whether every PE's key is the same forever (round robin): then a
    /// selected PE, taking the pool's next sequence number, always moves
    /// behind all others.
    pub fn fixed_key(self) -> bool {
        self.family() == Family::Ordered && self.0 == PolicyType::ROUND_ROBIN
    }

    /// Weighted family: the PE's weight in the draw (0 = never drawn).
    pub fn weight(self, s: &PolicyState) -> u64 {
        let (a, b) = (u64::from(s.a), u64::from(s.b));
        let deg = u64::from(s.degradation());
        let remaining = |used: u64| MAX_VALUE.saturating_sub(used).max(1);
        match self.0 {
            PolicyType::RANDOM => 1,
            PolicyType::WEIGHTED_RANDOM | PolicyType::WEIGHTED_RANDOM_DPF => a,
            PolicyType::RANDOMIZED_LEAST_USED => remaining(a),
            PolicyType::RANDOMIZED_PRIORITY_LEAST_USED => remaining(a + b),
            PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION => remaining(a + deg),
            PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION => remaining(a + b + deg),
            _ => 1,
        }
    }

    /// The registered values (wire order) as `(a, b, static term in c1)`.
    fn values_of(self, v: [u32; 4]) -> (u32, u32, u32) {
        let (a, b, extra) = self.compact(v);
        match self.0 {
            PolicyType::LEAST_USED_DPF => (a, extra, 0),
            PolicyType::LEAST_USED_DEGRADATION_DPF => (a, b, extra),
            _ => (a, b, 0),
        }
    }

    /// State of a PE joining the pool with registered values `vals` (wire
    /// order). `current_round` is the round of the pool's first PE (WRR
    /// starts newcomers in the current round).
    pub fn init(self, vals: [u32; 4], seq: u32, current_round: u32) -> PolicyState {
        let (a, b, c1) = self.values_of(vals);
        let mut s = PolicyState {
            a,
            b,
            c0: 0,
            c1,
            seq,
        };
        if self.0 == PolicyType::WEIGHTED_ROUND_ROBIN {
            s.c0 = current_round;
            s.c1 = a;
        }
        s
    }

    /// A re-registration with values `vals`: adopt them and, like RSPLIB,
    /// reset the degradation and clamp the WRR counter to the new weight if
    /// anything changed. Returns whether the selection order may change.
    pub fn update_values(self, s: &mut PolicyState, vals: [u32; 4]) -> bool {
        let (a, b, c1) = self.values_of(vals);
        if self.0 == PolicyType::WEIGHTED_ROUND_ROBIN {
            if s.a == a {
                return false;
            }
            s.a = a;
            s.c1 = s.c1.min(a);
            return true;
        }
        if (s.a, s.b, s.c1) == (a, b, c1) && s.c0 == 0 {
            return false;
        }
        (s.a, s.b, s.c0, s.c1) = (a, b, 0, c1);
        true
    }

    /// The PE was selected and is among the first `max_increment`: it gets a
    /// new sequence number and its policy counters advance.
    pub fn on_selected(self, s: &mut PolicyState, new_seq: u32, compat: Compat) {
        s.seq = new_seq;
        self.advance(s, compat);
        if compat == Compat::Rsplib {
            // RSPLIB applies its update hook a second time when it re-links.
            self.advance(s, compat);
        }
    }

    /// RSPLIB runs its update hook when a PE is linked into the selection
    /// order (on add, and on re-registration with changed values).
    pub fn on_linked(self, s: &mut PolicyState, compat: Compat) {
        if compat == Compat::Rsplib {
            self.advance(s, compat);
        }
    }

    /// The policy's update hook: WRR counts down, degradation grows.
    fn advance(self, s: &mut PolicyState, compat: Compat) {
        if compat == Compat::Rsplib && self.family() == Family::Weighted {
            // RSPLIB's hook for the weighted family only recomputes the value.
            return;
        }
        if self.0 == PolicyType::WEIGHTED_ROUND_ROBIN {
            if s.c1 > 1 {
                s.c1 -= 1;
            } else {
                s.c0 = s.c0.wrapping_add(1);
                s.c1 = s.a;
            }
        }
        if self.uses_degradation() {
            s.c0 = u32::try_from(sat(u64::from(s.c0) + u64::from(s.b))).unwrap_or(u32::MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(t: PolicyType, vals: [u32; 4]) -> PolicyState {
        Kind(t).init(vals, 0, 0)
    }

    #[test]
    fn families_follow_rsplib() {
        for &t in Policy::ALL_TYPES {
            let k = Kind(t);
            let weighted = matches!(
                t.0,
                3 | 4 | 0x4000_0004 | 0xb000_1001 | 0xb000_1002 | 0xb000_1004 | 0xb000_2001
            );
            assert_eq!(k.family() == Family::Weighted, weighted, "{t}");
        }
    }

    #[test]
    fn keys_and_weights_saturate() {
        let max = u32::MAX;
        let plu = PolicyType::PRIORITY_LEAST_USED;
        assert_eq!(Kind(plu).key(&st(plu, [max, 5, 0, 0])), MAX_VALUE);
        assert_eq!(
            Kind(PolicyType::PRIORITY).key(&st(PolicyType::PRIORITY, [7, 0, 0, 0])),
            MAX_VALUE - 7
        );
        let rlu = PolicyType::RANDOMIZED_LEAST_USED;
        assert_eq!(Kind(rlu).weight(&st(rlu, [max, 0, 0, 0])), 1);
        assert_eq!(Kind(rlu).weight(&st(rlu, [0, 0, 0, 0])), MAX_VALUE);
        let wrand = PolicyType::WEIGHTED_RANDOM;
        assert_eq!(Kind(wrand).weight(&st(wrand, [0, 0, 0, 0])), 0);
        // WRAND-DPF: full distance penalty removes the whole weight (-> 0),
        // none leaves it whole, half of it halves it.
        let dpf = PolicyType::WEIGHTED_RANDOM_DPF;
        assert_eq!(Kind(dpf).weight(&st(dpf, [1000, max, 1, 0])), 0);
        assert_eq!(Kind(dpf).weight(&st(dpf, [1000, 0, 9, 0])), 1000);
        assert_eq!(Kind(dpf).weight(&st(dpf, [1000, max / 2, 1, 0])), 500);
        // LU-DPF: load + distance * load_dpf.
        let ludpf = PolicyType::LEAST_USED_DPF;
        assert_eq!(Kind(ludpf).key(&st(ludpf, [100, 5, 10, 0])), 150);
    }

    #[test]
    fn wrr_counts_down_then_moves_to_next_round() {
        let k = Kind(PolicyType::WEIGHTED_ROUND_ROBIN);
        let mut s = k.init([3, 0, 0, 0], 0, 5);
        assert_eq!((s.round(), s.virtual_counter()), (5, 3));
        k.on_selected(&mut s, 1, Compat::Rfc);
        k.on_selected(&mut s, 2, Compat::Rfc);
        assert_eq!((s.round(), s.virtual_counter()), (5, 1));
        k.on_selected(&mut s, 3, Compat::Rfc);
        assert_eq!((s.round(), s.virtual_counter(), s.seq), (6, 3, 3));
    }

    #[test]
    fn degradation_grows_per_selection_and_resets_on_update() {
        let k = Kind(PolicyType::LEAST_USED_DEGRADATION);
        let mut s = k.init([100, 10, 0, 0], 0, 0);
        assert_eq!(k.key(&s), 100);
        k.on_selected(&mut s, 1, Compat::Rfc);
        k.on_selected(&mut s, 2, Compat::Rfc);
        assert_eq!(k.key(&s), 120);
        k.on_selected(&mut s, 3, Compat::Rsplib);
        assert_eq!(k.key(&s), 140);
        assert!(k.update_values(&mut s, [100, 10, 0, 0]));
        assert_eq!(k.key(&s), 100);
        assert!(!k.update_values(&mut s, [100, 10, 0, 0]));
    }
}
