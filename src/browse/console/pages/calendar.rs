//! The calendar page: a month of days marked with their recovery points, and the recovery
//! points of the chosen day.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;

use super::{Ctx, browse_url, outside, when};
use crate::browse::SnapInfo;
use crate::browse::console::calendar::{Cell, Month, WEEKDAYS, parse_month};
use crate::browse::console::html::{Fields, error_page, esc, html, page};
use crate::browse::http::Response;
use crate::format::id::Id;

impl Ctx<'_> {
    pub fn calendar(&self, f: &Fields) -> Response {
        let c = self.c;
        let base = self.base();
        let snaps = c.browser.snapshots();
        let counts = points_per_day(&snaps);
        let newest_day = snaps.last().map(|s| s.day.clone());
        let today = Timestamp::now().to_zoned(c.opts.time_zone.clone()).date();
        let month_start = match shown_month(f, newest_day.as_deref(), today) {
            Ok(d) => d,
            Err(m) => {
                return error_page(base, 400, &format!("{m:?} is not a month like 2026-11"));
            }
        };
        let month = Month::new(month_start, &counts);
        let day = chosen_day(f, &counts, &month.key());

        let mut h = String::new();
        self.calendar_notes(&mut h, &snaps);
        month_bar(&mut h, base, &month, newest_day.as_deref());
        month_grid(&mut h, base, &month, day.as_deref(), today);
        if let Some(d) = &day {
            self.day_points(&mut h, &snaps, d);
        }
        html(200, page(base, "Recovery points", "calendar", &h))
    }

    /// The title, and notes on an empty vault and on recovery points that cannot be read.
    fn calendar_notes(&self, h: &mut String, snaps: &[Arc<SnapInfo>]) {
        let _ = write!(h, "<h1>Recovery points</h1>");
        if snaps.is_empty() {
            h.push_str("<p id=empty>The vault holds no recovery points yet.</p>");
        }
        for (id, why) in self.c.browser.unreadable() {
            let _ = write!(
                h,
                "<p class=warn>Recovery point {} cannot be read and is not shown: {}</p>",
                esc(&id.short()),
                esc(&why)
            );
        }
    }

    /// The table of the recovery points taken on day `d` (`YYYY-MM-DD`).
    fn day_points(&self, h: &mut String, snaps: &[Arc<SnapInfo>], d: &str) {
        let outside = outside(self.c);
        let _ = write!(
            h,
            "<h2 id=day-title>{d}</h2><table id=points class=list><thead><tr><th>Time</th><th>Host</th><th>Label</th><th>Id</th><th>State</th><th></th></tr></thead><tbody>"
        );
        let mut any = false;
        for s in snaps.iter().filter(|s| s.day == d) {
            any = true;
            self.point_row(h, s, &outside);
        }
        h.push_str("</tbody></table>");
        if !any {
            h.push_str("<p id=no-points>No recovery points on this day.</p>");
        }
    }

    /// One recovery point of the day: time, host, label, id, state, and a link to browse it.
    fn point_row(&self, h: &mut String, s: &SnapInfo, outside: &HashSet<Id>) {
        let state = if s.snapshot.complete {
            "complete"
        } else {
            "partial"
        };
        let ct = change_tracking_note(s, outside);
        let _ = write!(
            h,
            "<tr data-id={short}><td><time>{t}</time></td><td>{host}</td><td>{label}</td><td><a class=open href=\"{url}\"><code>{short}</code></a></td><td>{state}{ct}</td><td><a href=\"{url}\">Browse</a></td></tr>",
            short = esc(&s.id.short()),
            t = esc(&when(self.c, s.snapshot.time)),
            host = esc(&s.snapshot.host),
            label = esc(&s.snapshot.label),
            url = browse_url(self.base(), s, &[]),
        );
    }
}

/// How many recovery points each day (`YYYY-MM-DD`) has.
fn points_per_day(snaps: &[Arc<SnapInfo>]) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for s in snaps {
        *counts.entry(s.day.clone()).or_default() += 1;
    }
    counts
}

/// The month to show: the one asked for (`Err` with the text when it is not a month), else
/// the newest recovery point's, else this one.
fn shown_month<'f>(f: &'f Fields, newest_day: Option<&str>, today: Date) -> Result<Date, &'f str> {
    match f.text("month") {
        Some(m) => parse_month(m).ok_or(m),
        None => Ok(newest_day
            .and_then(parse_month)
            .unwrap_or(today.first_of_month())),
    }
}

/// The day whose recovery points are listed: the one asked for, else the newest day of the
/// month with recovery points; none when it is not in the month `key` (`YYYY-MM`).
fn chosen_day(f: &Fields, counts: &BTreeMap<String, usize>, key: &str) -> Option<String> {
    f.text("day")
        .map(str::to_string)
        .or_else(|| counts.keys().rev().find(|d| d.starts_with(key)).cloned())
        .filter(|d| d.starts_with(key))
}

/// A link to the month of `d`, or nothing when there is no such month.
fn month_link(base: &str, d: Option<Date>, id: &str, text: &str) -> String {
    match d {
        Some(d) => format!(
            "<a id={id} href=\"{base}?month={}\">{text}</a>",
            d.strftime("%Y-%m")
        ),
        None => String::new(),
    }
}

/// The bar above the grid: previous and next month, the title, a month picker, and a link
/// to the newest recovery point's day.
fn month_bar(h: &mut String, base: &str, month: &Month, newest_day: Option<&str>) {
    let key = month.key();
    let _ = write!(
        h,
        "<div class=monthbar>{}<h2 id=month-title>{}</h2>{}\
         <form id=month-form method=get action=\"{base}\"><input type=month name=month value=\"{key}\" aria-label=Month><button>Go</button></form>{}</div>",
        month_link(base, month.previous(), "prev-month", "◀"),
        esc(&month.title()),
        month_link(base, month.next(), "next-month", "▶"),
        newest_day
            .map(|d| format!(
                "<a id=newest href=\"{base}?month={}&day={d}\">Newest</a>",
                &d[..7]
            ))
            .unwrap_or_default()
    );
}

/// The month's grid, Monday first, with the chosen day and today marked.
fn month_grid(h: &mut String, base: &str, month: &Month, day: Option<&str>, today: Date) {
    let key = month.key();
    let _ = write!(
        h,
        "<table id=calendar class=calendar data-month=\"{key}\"><thead><tr>"
    );
    for w in WEEKDAYS {
        let name = format!("{w:?}");
        let _ = write!(h, "<th>{}</th>", &name[..3]);
    }
    h.push_str("</tr></thead><tbody>");
    for week in &month.weeks {
        h.push_str("<tr>");
        for cell in week {
            match cell.date {
                None => h.push_str("<td class=pad></td>"),
                Some(d) => day_cell(h, base, &key, cell, d, day, today),
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
}

/// One day of the grid; a day with recovery points links to its list.
fn day_cell(
    h: &mut String,
    base: &str,
    key: &str,
    cell: &Cell,
    d: Date,
    day: Option<&str>,
    today: Date,
) {
    let ds = d.to_string();
    let mut cls = String::from("day");
    if cell.points > 0 {
        cls.push_str(" has-points");
    }
    if day == Some(ds.as_str()) {
        cls.push_str(" selected");
    }
    if d == today {
        cls.push_str(" today");
    }
    if cell.points > 0 {
        let _ = write!(
            h,
            "<td class=\"{cls}\" data-date={ds} data-points={}><a href=\"{base}?month={key}&day={ds}\"><span class=num>{}</span><span class=count>{}</span></a></td>",
            cell.points,
            d.day(),
            cell.points
        );
    } else {
        let _ = write!(
            h,
            "<td class=\"{cls}\" data-date={ds} data-points=0><span class=num>{}</span></td>",
            d.day()
        );
    }
}

/// For a site-database recovery point, whether it is inside its change-tracking window.
fn change_tracking_note(s: &SnapInfo, outside: &HashSet<Id>) -> &'static str {
    match s.snapshot.change_tracking_days {
        Some(_) if outside.contains(&s.id) => {
            " <span class=warn title=\"older than the SQL change-tracking retention: restoring its site database means a replication reinit\">outside change tracking</span>"
        }
        Some(_) => " <span class=ok>inside change tracking</span>",
        None => "",
    }
}
