//! Reads criterion's estimates of this run back and prints ratios side by
//! side (shared by the io benches).

#![allow(dead_code)]

use std::path::PathBuf;

/// Whether criterion measures (`cargo bench`) rather than runs each
/// benchmark once (`cargo test --benches`).
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    // target/<profile>/deps/<bench-binary>
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .expect("target dir")
        .join("criterion")
}

/// Median time per iteration in nanoseconds of `group/function` from this
/// run, if criterion wrote it.
pub fn median_ns(group: &str, function: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(function)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let at = text.find("\"median\"")?;
    let rest = &text[at..];
    let pe = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let num: String = rest[pe..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        .collect();
    num.parse().ok()
}

/// Prints `label: a vs b = ratio (aim)` where the ratio is b's time over
/// a's time, i.e. a's throughput relative to b's.
pub fn ratio(label: &str, group: &str, a: &str, b: &str, aim: &str) -> Option<f64> {
    match (median_ns(group, a), median_ns(group, b)) {
        (Some(ta), Some(tb)) => {
            let r = tb / ta;
            println!(
                "{label:<48} {a} {:>9.1} us | {b} {:>9.1} us | throughput ratio {r:.3}x   (aim: {aim})",
                ta / 1e3,
                tb / 1e3
            );
            Some(r)
        }
        _ => {
            println!("{label:<48} no estimates found for {group}/{a} and {group}/{b}");
            None
        }
    }
}

/// CPU time consumed by the calling thread, in nanoseconds.
pub fn thread_cpu_ns() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|x, y| x.partial_cmp(y).unwrap());
    v[v.len() / 2]
}

/// What [`measure`] found: a's throughput relative to b's, each the median
/// over rounds of b's cost per operation over a's.
pub struct Interleaved {
    /// By the sending thread's own CPU time, which other processes on a
    /// shared machine disturb far less than the wall clock.
    pub cpu: f64,
    /// By wall-clock time.
    pub wall: f64,
    /// Largest over smallest per-round CPU ratio: the noise.
    pub spread: f64,
    /// Median CPU nanoseconds per operation of a, and of b.
    pub a_ns: f64,
    pub b_ns: f64,
}

/// Times `a` and `b` in alternating short bursts (`rounds` of about
/// `burst` each, order swapped every round, so load from other processes
/// hits both alike).
pub fn measure(
    rounds: usize,
    burst: std::time::Duration,
    a: &mut dyn FnMut(),
    b: &mut dyn FnMut(),
) -> Interleaved {
    use std::time::Instant;
    let calibrate = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        let mut n = 0u64;
        while t.elapsed() < burst / 4 {
            f();
            n += 1;
        }
        (n * 4).max(1)
    };
    let (na, nb) = (calibrate(a), calibrate(b));
    let time = |f: &mut dyn FnMut(), n: u64| {
        let (t, c) = (Instant::now(), thread_cpu_ns());
        for _ in 0..n {
            f();
        }
        let cpu = thread_cpu_ns() - c;
        (t.elapsed().as_nanos() as f64 / n as f64, cpu / n as f64)
    };
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    let (mut ca, mut cb) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let ((wa, pa), (wb, pb)) = if r % 2 == 0 {
            let x = time(a, na);
            (x, time(b, nb))
        } else {
            let y = time(b, nb);
            (time(a, na), y)
        };
        wall.push(wb / wa);
        cpu.push(pb / pa);
        ca.push(pa);
        cb.push(pb);
    }
    let c = median(&mut cpu);
    Interleaved {
        cpu: c,
        wall: median(&mut wall),
        spread: cpu[cpu.len() - 1] / cpu[0],
        a_ns: median(&mut ca),
        b_ns: median(&mut cb),
    }
}

/// [`measure`], printed with its label and aim; returns the CPU ratio.
pub fn interleaved(
    label: &str,
    aim: &str,
    rounds: usize,
    burst: std::time::Duration,
    a: &mut dyn FnMut(),
    b: &mut dyn FnMut(),
) -> f64 {
    let r = measure(rounds, burst, a, b);
    println!(
        "{label:<46} cpu {:>7.1} vs {:>7.1} us/op -> {:.3}x | wall-clock {:.3}x   (aim: {aim})",
        r.a_ns / 1e3,
        r.b_ns / 1e3,
        r.cpu,
        r.wall,
    );
    r.cpu
}

/// Prints the ratio rows as the bench's last lines, one
/// `RATIO <name> <value> [<aim>]` each (the form
/// `scripts/plot-ratios.py` reads).
pub fn print_rows(rows: &[(String, f64, String)]) {
    println!();
    for (name, value, aim) in rows {
        let name: String = name
            .chars()
            .map(|c| if c.is_whitespace() { '_' } else { c })
            .collect();
        if aim.trim().is_empty() {
            println!("RATIO {name} {value:.3}");
        } else {
            println!("RATIO {name} {value:.3} {}", aim.replace(' ', ""));
        }
    }
}
