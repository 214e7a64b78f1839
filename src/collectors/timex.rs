//! `timex`: the kernel clock's synchronisation state from adjtimex(2) (read only), as
//! node_exporter's timex collector names it: offset, frequency, error bounds, status,
//! PPS figures and whether the clock is synchronised.


use super::{Run, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::sys::Timex;

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "The kernel clock's synchronisation (adjtimex(2), read only).";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["timex"];

/// Its section, `system.timex:`.
pub type Config = super::CollectorToggle;

macro_rules! family {
    ($id:ident, $kind:ident, $name:literal, $help:literal) => {
        pub static $id: Family = Family::$kind($name, $help);
    };
}

family!(
    OFFSET,
    gauge,
    "node_timex_offset_seconds",
    "Time offset in between local system and reference clock."
);
family!(
    FREQUENCY,
    gauge,
    "node_timex_frequency_adjustment_ratio",
    "Local clock frequency adjustment."
);
family!(
    MAXERROR,
    gauge,
    "node_timex_maxerror_seconds",
    "Maximum error in seconds."
);
family!(
    ESTERROR,
    gauge,
    "node_timex_estimated_error_seconds",
    "Estimated error in seconds."
);
family!(
    STATUS,
    gauge,
    "node_timex_status",
    "Value of the status array bits."
);
family!(
    CONSTANT,
    gauge,
    "node_timex_loop_time_constant",
    "Phase-locked loop time constant."
);
family!(
    TICK,
    gauge,
    "node_timex_tick_seconds",
    "Seconds between clock ticks."
);
family!(
    PPS_FREQUENCY,
    gauge,
    "node_timex_pps_frequency_hertz",
    "Pulse per second frequency."
);
family!(
    PPS_JITTER,
    gauge,
    "node_timex_pps_jitter_seconds",
    "Pulse per second jitter."
);
family!(
    PPS_SHIFT,
    gauge,
    "node_timex_pps_shift_seconds",
    "Pulse per second interval duration."
);
family!(
    PPS_STABILITY,
    gauge,
    "node_timex_pps_stability_hertz",
    "Pulse per second stability, average of recent frequency changes."
);
family!(
    PPS_JITTER_TOTAL,
    counter,
    "node_timex_pps_jitter_total",
    "Pulse per second count of jitter limit exceeded events."
);
family!(
    PPS_CALIBRATION,
    counter,
    "node_timex_pps_calibration_total",
    "Pulse per second count of calibration intervals."
);
family!(
    PPS_ERROR,
    counter,
    "node_timex_pps_error_total",
    "Pulse per second count of calibration errors."
);
family!(
    PPS_STABILITY_EXCEEDED,
    counter,
    "node_timex_pps_stability_exceeded_total",
    "Pulse per second count of stability limit exceeded events."
);
family!(
    TAI,
    gauge,
    "node_timex_tai_offset_seconds",
    "International Atomic Time (TAI) offset."
);
family!(
    SYNC,
    gauge,
    "node_timex_sync_status",
    "Is clock synchronized to a reliable server (1 = yes, 0 = no)."
);

pub static SERVED: Served = Served::families(&[
    &OFFSET,
    &FREQUENCY,
    &MAXERROR,
    &ESTERROR,
    &STATUS,
    &CONSTANT,
    &TICK,
    &PPS_FREQUENCY,
    &PPS_JITTER,
    &PPS_SHIFT,
    &PPS_STABILITY,
    &PPS_JITTER_TOTAL,
    &PPS_CALIBRATION,
    &PPS_ERROR,
    &PPS_STABILITY_EXCEEDED,
    &TAI,
    &SYNC,
]);

/// The clock state adjtimex returns when the clock is not synchronised.
const TIME_ERROR: i32 = 5;
/// `status` bit: offsets and jitter are in nanoseconds, not microseconds.
const STA_NANO: i32 = 0x2000;
/// Parts per million with a 16-bit binary fraction, as `freq`, `ppsfreq` and `stabil`.
const PPM16: f64 = 1_000_000.0 * 65536.0;

/// Writes `t` in node_exporter's units.
pub fn encode(t: &Timex, w: &mut MetricWriter<'_>) {
    let fine = if t.status & STA_NANO != 0 { 1e-9 } else { 1e-6 };
    w.sample(&OFFSET, &[], t.offset as f64 * fine);
    w.sample(&FREQUENCY, &[], 1.0 + t.freq as f64 / PPM16);
    w.sample(&MAXERROR, &[], t.maxerror as f64 * 1e-6);
    w.sample(&ESTERROR, &[], t.esterror as f64 * 1e-6);
    w.sample(&STATUS, &[], f64::from(t.status));
    w.sample(&CONSTANT, &[], t.constant as f64);
    w.sample(&TICK, &[], t.tick as f64 * 1e-6);
    w.sample(&PPS_FREQUENCY, &[], t.ppsfreq as f64 / PPM16);
    w.sample(&PPS_JITTER, &[], t.jitter as f64 * fine);
    w.sample(&PPS_SHIFT, &[], f64::from(t.shift));
    w.sample(&PPS_STABILITY, &[], t.stabil as f64 / PPM16);
    w.sample(&PPS_JITTER_TOTAL, &[], t.jitcnt as f64);
    w.sample(&PPS_CALIBRATION, &[], t.calcnt as f64);
    w.sample(&PPS_ERROR, &[], t.errcnt as f64);
    w.sample(&PPS_STABILITY_EXCEEDED, &[], t.stbcnt as f64);
    w.sample(&TAI, &[], f64::from(t.tai));
    w.sample_u64(&SYNC, &[], u64::from(t.state != TIME_ERROR));
}

pub struct TimexCollector;

pub fn build(_: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    Ok(Some(super::blocking(TimexCollector)))
}

impl Collector for TimexCollector {
    fn may_block(&self) -> bool {
        false
    }

    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let t = crate::sys::adjtimex().map_err(|e| {
            CollectError::Remote(format!(
                "clock_adjtime(2): {e} (a sandbox must allow the clock_adjtime system call)"
            ))
        })?;
        encode(&t, w);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Format;

    #[test]
    fn units_follow_the_status_bits() {
        let t = Timex {
            state: TIME_ERROR,
            offset: 1500,
            freq: 65536 * 10,
            maxerror: 16_000_000,
            status: 0x40,
            tick: 10_000,
            ..Timex::default()
        };
        let mut buf = Vec::new();
        encode(&t, &mut MetricWriter::new(&mut buf, Format::Text));
        let text = String::from_utf8(buf).unwrap();
        for want in [
            "node_timex_offset_seconds 0.0015\n",
            "node_timex_frequency_adjustment_ratio 1.00001\n",
            "node_timex_maxerror_seconds 16\n",
            "node_timex_tick_seconds 0.01\n",
            "node_timex_status 64\n",
            "node_timex_sync_status 0\n",
        ] {
            assert!(text.contains(want), "{want} not in {text}");
        }
        let nano = Timex {
            state: 0,
            offset: 1500,
            status: STA_NANO,
            ..Timex::default()
        };
        let mut buf = Vec::new();
        encode(&nano, &mut MetricWriter::new(&mut buf, Format::Text));
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.contains("node_timex_offset_seconds 0.0000015\n")
                || text.contains("node_timex_offset_seconds 1.5e-6\n"),
            "{text}"
        );
        assert!(text.contains("node_timex_sync_status 1\n"));
    }

    #[test]
    fn the_live_clock_reads() {
        assert!(crate::sys::adjtimex().is_ok());
    }
}
