//! The calendar's month grid: weeks from Monday, each day with how many recovery points it
//! has. No I/O: the console gives it the days it knows.

use std::collections::BTreeMap;

use jiff::civil::{Date, Weekday};

/// One cell: a day of the month (or `None` to pad the first and last week).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub date: Option<Date>,
    pub points: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Month {
    pub first: Date,
    /// Rows of seven cells, Monday first.
    pub weeks: Vec<Vec<Cell>>,
}

impl Month {
    /// The grid of the month starting at `first` (any day of it is accepted), with `counts`
    /// keyed by `YYYY-MM-DD`.
    pub fn new(any_day: Date, counts: &BTreeMap<String, usize>) -> Month {
        let first = any_day.first_of_month();
        let lead = first.weekday().to_monday_zero_offset() as usize;
        let mut cells: Vec<Cell> = vec![
            Cell {
                date: None,
                points: 0
            };
            lead
        ];
        let mut d = first;
        while d.month() == first.month() {
            cells.push(Cell {
                date: Some(d),
                points: counts.get(&d.to_string()).copied().unwrap_or(0),
            });
            match d.tomorrow() {
                Ok(n) => d = n,
                Err(_) => break,
            }
        }
        while !cells.len().is_multiple_of(7) {
            cells.push(Cell {
                date: None,
                points: 0,
            });
        }
        Month {
            first,
            weeks: cells.chunks(7).map(<[Cell]>::to_vec).collect(),
        }
    }

    /// `YYYY-MM`.
    pub fn key(&self) -> String {
        self.first.strftime("%Y-%m").to_string()
    }

    pub fn title(&self) -> String {
        self.first.strftime("%B %Y").to_string()
    }

    pub fn previous(&self) -> Option<Date> {
        self.first.yesterday().ok().map(|d| d.first_of_month())
    }

    pub fn next(&self) -> Option<Date> {
        self.first.last_of_month().tomorrow().ok()
    }
}

/// `YYYY-MM` (or a whole date) as the first of that month.
pub(crate) fn parse_month(s: &str) -> Option<Date> {
    let full = if s.len() == 7 {
        format!("{s}-01")
    } else {
        s.to_string()
    };
    full.parse::<Date>().ok().map(|d| d.first_of_month())
}

pub(crate) const WEEKDAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn november_2026_starts_on_a_sunday_and_counts_its_days() {
        let counts: BTreeMap<String, usize> =
            [("2026-11-20".to_string(), 2), ("2026-10-31".to_string(), 1)].into();
        let m = Month::new("2026-11-17".parse().unwrap(), &counts);
        assert_eq!(m.key(), "2026-11");
        assert_eq!(m.title(), "November 2026");
        // 1 Nov 2026 is a Sunday: six blanks, then 30 days, padded to 6 weeks.
        assert_eq!(m.weeks.len(), 6);
        assert_eq!(m.weeks[0][5].date, None);
        assert_eq!(m.weeks[0][6].date, Some("2026-11-01".parse().unwrap()));
        let marked: Vec<(String, usize)> = m
            .weeks
            .iter()
            .flatten()
            .filter(|c| c.points > 0)
            .map(|c| (c.date.unwrap().to_string(), c.points))
            .collect();
        assert_eq!(marked, vec![("2026-11-20".to_string(), 2)]);
        assert_eq!(m.previous().unwrap().to_string(), "2026-10-01");
        assert_eq!(m.next().unwrap().to_string(), "2026-12-01");
        assert_eq!(parse_month("2026-02").unwrap().to_string(), "2026-02-01");
        assert!(parse_month("2026-13").is_none());
    }
}
