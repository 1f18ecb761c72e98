use super::*;

#[test]
fn countdowns_are_geometric_with_the_right_mean() {
    // The mean of ceil(E * rate / size) is about rate/size + 1/2.
    let rng = Cell::new(seed());
    let (size, rate) = (64usize, 64usize << 10);
    let n = 20_000;
    let mean = (0..n)
        .map(|_| countdown(-uniform(&rng).ln(), rate, size) as f64)
        .sum::<f64>()
        / n as f64;
    let expect = 1.0 / probability(size, rate);
    // Standard deviation of the mean is about expect / sqrt(n) = 0.7%.
    assert!((mean - expect).abs() < 0.04 * expect, "{mean} vs {expect}");
}

#[test]
fn a_countdown_is_the_ceiling_within_its_bounds() {
    for (e, rate, size) in [
        (0.0, 512 << 10, 64),
        (-0.0, 512 << 10, 64),
        (1e-9, 1, 32768),
        (0.5, 512, 256),
        (0.5, 512, 512),
        (1.0, 1000, 3),
        (2.75, 512 << 10, 48),
    ] {
        let want = (e * rate as f64 / size as f64).ceil().max(1.0) as u64;
        assert_eq!(countdown(e, rate, size), want, "{e} {rate} {size}");
    }
    assert_eq!(countdown(1e300, 1 << 40, 8), crate::cache::SAMPLING_OFF);
}

#[test]
fn uniform_stays_in_the_half_open_interval() {
    let rng = Cell::new(seed());
    for _ in 0..100_000 {
        let u = uniform(&rng);
        assert!(u > 0.0 && u <= 1.0, "{u}");
    }
}

#[test]
fn probability_is_that_of_a_byte_among_rate() {
    let tiny = 1.0 / (1 << 19) as f64;
    assert!((probability(1, 1 << 19) - tiny).abs() < tiny * 1e-5);
    assert!((probability(1 << 19, 1 << 19) - (1.0 - (-1.0f64).exp())).abs() < 1e-12);
}

/// A profiler of its own (not the process's), for the bucket logic.
fn stack(n: usize) -> Vec<usize> {
    (0..n).map(|i| 0x1000 + i * 8).collect()
}

#[test]
fn buckets_are_found_again_by_stack() {
    let mut pr = Profiler::new();
    let a = stack(5);
    let b = stack(6);
    let ba = pr.bucket(&a, hash_stack(&a));
    let bb = pr.bucket(&b, hash_stack(&b));
    assert!(!ba.is_null() && !bb.is_null() && ba != bb);
    assert_eq!(pr.bucket(&a, hash_stack(&a)), ba);
    // Same hash, other stack: a different bucket in the same chain.
    let c = stack(7);
    let bc = pr.bucket(&c, hash_stack(&a));
    assert!(bc != ba);
    assert_eq!(pr.bucket(&c, hash_stack(&a)), bc);
    // SAFETY: live buckets of this profiler.
    unsafe {
        assert_eq!((*bc).stack(), &c[..]);
        assert_eq!((*ba).stack(), &a[..]);
    }
    assert_eq!(pr.nbuckets, 3);
}

#[test]
fn the_peak_is_the_in_use_profile_at_the_high_water_mark() {
    let mut pr = Profiler::new();
    let (a, b) = (stack(3), stack(4));
    let ba = pr.bucket(&a, hash_stack(&a));
    let bb = pr.bucket(&b, hash_stack(&b));
    // SAFETY: live buckets of this profiler, used one at a time.
    let (ba, bb) = unsafe { (&mut *ba, &mut *bb) };
    pr.add(ba, 1.0, 100.0);
    pr.add(bb, 1.0, 50.0);
    pr.add(ba, 1.0, 100.0); // peak: a 200, b 50
    pr.remove(ba, 1.0, 100.0);
    pr.remove(ba, 1.0, 100.0);
    pr.add(bb, 1.0, 60.0); // now a 0, b 110: total 110 < 250
    let peak = |b: &Bucket, pr: &Profiler| {
        if b.peak_epoch == pr.peak_epoch {
            (b.peak_objects, b.peak_bytes)
        } else {
            b.inuse()
        }
    };
    assert_eq!(pr.peak_bytes, 250.0);
    assert_eq!(peak(ba, &pr), (2.0, 200.0));
    assert_eq!(peak(bb, &pr), (1.0, 50.0));
    assert_eq!(ba.inuse(), (0.0, 0.0));
    assert_eq!(bb.inuse(), (2.0, 110.0));
    // A new high moves the peak to the present.
    pr.add(bb, 1.0, 500.0);
    assert_eq!(pr.peak_bytes, 610.0);
    assert_eq!(peak(ba, &pr), (0.0, 0.0));
    assert_eq!(peak(bb, &pr), (3.0, 610.0));
    assert_eq!(pr.inuse_bytes, 610.0);
}

#[test]
fn records_are_recycled() {
    let mut pr = Profiler::new();
    let s1 = pr.new_sample();
    assert!(!s1.is_null());
    // SAFETY: s1 is an unused record; putting it on the free list.
    unsafe { (*s1).next_free = pr.free_samples };
    pr.free_samples = s1;
    assert_eq!(pr.new_sample(), s1);
    assert!(pr.new_sample() != s1);
}
