//! Every run's outcome, and the statistics the report takes from them: medians over
//! repeats, and ratios as the median of per-repeat ratios (each repeat pairs runs made one
//! right after the other, so slow drifts of a shared machine cancel out).

use crate::procfs::CpuUse;
use crate::scenario::{Measured, Metric, Scenario, Target};

pub struct Outcome {
    pub scenario: Scenario,
    pub target: Target,
    pub repeat: usize,
    pub result: Result<Measured, String>,
}

#[derive(Default)]
pub struct Results {
    pub outcomes: Vec<Outcome>,
}

pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

impl Results {
    fn measured(
        &self,
        scenario: Scenario,
        target: Target,
    ) -> impl Iterator<Item = (usize, &Measured)> {
        self.outcomes
            .iter()
            .filter(move |o| o.scenario == scenario && o.target == target)
            .filter_map(|o| o.result.as_ref().ok().map(|m| (o.repeat, m)))
    }

    pub fn median(&self, scenario: Scenario, target: Target, metric: Metric) -> Option<f64> {
        median(
            self.measured(scenario, target)
                .filter_map(|(_, m)| m.get(metric))
                .collect(),
        )
    }

    /// Median over repeats of `target`'s figure divided by `base`'s in the same repeat.
    pub fn ratio(
        &self,
        scenario: Scenario,
        target: Target,
        base: Target,
        metric: Metric,
    ) -> Option<f64> {
        let ratios = self
            .measured(scenario, target)
            .filter_map(|(repeat, m)| {
                let (_, b) = self.measured(scenario, base).find(|(r, _)| *r == repeat)?;
                let (num, den) = (m.get(metric)?, b.get(metric)?);
                (den > 0.0).then(|| num / den)
            })
            .collect();
        median(ratios)
    }

    /// Median CPU use (percent of one core) of one part, as picked by `part`.
    pub fn cpu(
        &self,
        scenario: Scenario,
        target: Target,
        part: fn(&CpuUse) -> Option<f64>,
    ) -> Option<f64> {
        median(
            self.measured(scenario, target)
                .filter_map(|(_, m)| part(&m.cpu))
                .collect(),
        )
    }

    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| o.result.is_err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
