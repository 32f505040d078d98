//! Restores from the page: checking the form, the dry-run preview, and the pages of the
//! restore jobs it starts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::{Ctx, MAX_ROWS, shown, snap_bar};
use crate::browse::SnapInfo;
use crate::browse::console::Console;
use crate::browse::console::html::{Fields, error_page, esc, html, page, secure, size};
use crate::browse::console::jobs::State;
use crate::browse::http::Response;
use crate::ops::restore::{Destination, IfExists, RestoreOptions, RestorePlan};
use crate::paths::parse_original;

/// A restore target from the page: absolute, and no `.` or `..` to climb out of it.
fn target_dir(t: &str) -> Result<PathBuf, String> {
    let p = Path::new(t);
    if !p.is_absolute() {
        return Err(format!(
            "the folder {t:?} is not an absolute path: give one like {}",
            if cfg!(windows) {
                r"D:\Restore"
            } else {
                "/srv/restore"
            }
        ));
    }
    if p.components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(format!(
            "the folder {t:?} may not contain . or .. components"
        ));
    }
    Ok(p.to_path_buf())
}

/// `POST restore`: validate everything, then preview (dry run) or start the job.
pub(crate) fn restore_post(c: &Console, f: &Fields) -> Response {
    let base = &c.base;
    if !c.opts.allow_restore {
        return error_page(
            base,
            403,
            "restoring from the console is off: start sitevault serve with --allow-restore",
        );
    }
    if f.text("id").is_none() {
        return error_page(base, 400, "the form names no recovery point");
    }
    let s = match c.pick(f) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let chosen = match chosen_paths(c, f, &s) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (dest, dest_shown) = match destination(base, f) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let if_exists: IfExists = match f.text("if_exists").unwrap_or("overwrite").parse() {
        Ok(x) => x,
        Err(e) => return error_page(base, 400, &e.to_string()),
    };
    let opts = restore_options(c, &s, dest, if_exists, &chosen);
    match f.text("action") {
        Some("preview") => preview(c, f, &s, opts, &chosen, &dest_shown),
        Some("restore") => start_job(c, &s, opts, dest_shown),
        _ => error_page(base, 400, "choose Preview or Restore"),
    }
}

/// The paths the form selected (else its folder), each as components that recovery point
/// `s` holds; empty means everything.
fn chosen_paths(c: &Console, f: &Fields, s: &Arc<SnapInfo>) -> Result<Vec<Vec<Vec<u8>>>, Response> {
    let base = &c.base;
    let style = s.snapshot.path_style;
    // Each selected path is percent-encoded in the form (names need not be UTF-8), and must
    // exist in the recovery point.
    let mut chosen: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut picked: Vec<&[u8]> = f.all("sel");
    if picked.is_empty()
        && let Some(folder) = f.bytes("folder")
        && !folder.is_empty()
    {
        picked.push(folder);
    }
    for p in picked {
        let Some(raw) = crate::browse::webdav::decode(&String::from_utf8_lossy(p)) else {
            return Err(error_page(
                base,
                400,
                "a selected path is not encoded as the page sends it",
            ));
        };
        let comps = match parse_original(style, &raw) {
            Ok(x) if !x.is_empty() => x,
            Ok(_) => continue,
            Err(e) => return Err(error_page(base, 400, &e.to_string())),
        };
        match c.browser.at_path(s, &comps) {
            Ok(Some(_)) => chosen.push(comps),
            Ok(None) => {
                return Err(error_page(
                    base,
                    400,
                    &format!(
                        "recovery point {} holds nothing at {}",
                        s.id.short(),
                        String::from_utf8_lossy(&raw)
                    ),
                ));
            }
            Err(e) => return Err(error_page(base, 500, &e.to_string())),
        }
    }
    Ok(chosen)
}

/// Where the form restores to, and how the pages name it.
fn destination(base: &str, f: &Fields) -> Result<(Destination, String), Response> {
    match f.text("dest") {
        Some("original") | None => Ok((Destination::Original, "the original location".to_string())),
        Some("target") => match f.text("target").map(target_dir) {
            Some(Ok(p)) => {
                let shown = p.display().to_string();
                Ok((Destination::Target(p), shown))
            }
            Some(Err(e)) => Err(error_page(base, 400, &e)),
            None => Err(error_page(base, 400, "give the folder to restore under")),
        },
        Some(other) => Err(error_page(
            base,
            400,
            &format!("destination {other:?}: choose original or another folder"),
        )),
    }
}

/// The restore's options: where, what to do with existing files, which paths, and the
/// recovery point's time for keep-both names.
fn restore_options(
    c: &Console,
    s: &SnapInfo,
    dest: Destination,
    if_exists: IfExists,
    chosen: &[Vec<Vec<u8>>],
) -> RestoreOptions {
    let mut opts = RestoreOptions::new(dest);
    opts.if_exists = if_exists;
    if !chosen.is_empty() {
        opts.filter = crate::pattern::PathFilter::exact(chosen.to_vec());
    }
    opts.stamp = s
        .snapshot
        .time
        .to_zoned(c.opts.time_zone.clone())
        .strftime("%Y-%m-%d %H%M")
        .to_string();
    opts
}

/// Start the restore as a job, and send the browser to its page.
fn start_job(c: &Console, s: &SnapInfo, opts: RestoreOptions, dest_shown: String) -> Response {
    let base = &c.base;
    let n = c.jobs.start(
        Arc::clone(&c.browser),
        s.id,
        s.snapshot.clone(),
        opts,
        dest_shown,
    );
    if n == 0 {
        return error_page(base, 500, "cannot start a restore thread");
    }
    secure(Response::new(303).with_header("Location", format!("{base}jobs/{n}")))
}

/// The dry run's plan, with a button that runs it for real with the same fields.
fn preview(
    c: &Console,
    f: &Fields,
    s: &Arc<SnapInfo>,
    mut opts: RestoreOptions,
    chosen: &[Vec<Vec<u8>>],
    dest: &str,
) -> Response {
    let base = &c.base;
    opts.dry_run = true;
    let index = c.browser.index();
    let plan = match crate::ops::restore::restore(c.browser.vault(), &index, &s.snapshot, &opts) {
        Ok(p) => p,
        Err(e) => return error_page(base, 400, &e.to_string()),
    };
    let what = chosen_text(s, chosen);
    let mut h = format!(
        "<h1>Restore preview</h1>{}<p id=plan-summary>Restoring {} to {}: {}{}. Nothing has been written yet.</p>\
         <table id=plan class=list><thead><tr><th>Action</th><th>Path</th><th>Written to</th></tr></thead><tbody>",
        snap_bar(c, s),
        esc(&what),
        esc(dest),
        esc(&tally(&plan)),
        if plan.summary.errors.is_empty() {
            String::new()
        } else {
            format!("; {} cannot be restored", plan.summary.errors.len())
        }
    );
    for a in plan.actions.iter().take(MAX_ROWS) {
        let act = action_name(a.action);
        let _ = write!(
            h,
            "<tr data-action={act}><td>{act}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.path),
            esc(a.written_to.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</tbody></table>");
    confirm_form(&mut h, base, f);
    html(200, page(base, "Restore preview", "", &h))
}

/// What is restored, as the preview says it: the chosen paths, or everything.
fn chosen_text(s: &SnapInfo, chosen: &[Vec<Vec<u8>>]) -> String {
    if chosen.is_empty() {
        "everything".to_string()
    } else {
        chosen
            .iter()
            .map(|cs| String::from_utf8_lossy(&shown(s.snapshot.path_style, cs)).into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How many entries the plan gives each action, e.g. `2 overwrite, 5 write`.
fn tally(plan: &RestorePlan) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for a in &plan.actions {
        *counts.entry(action_name(a.action)).or_default() += 1;
    }
    if counts.is_empty() {
        "nothing to do".to_string()
    } else {
        counts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The form that runs the previewed restore for real.
fn confirm_form(h: &mut String, base: &str, f: &Fields) {
    // The confirm form repeats every field but the action.
    let _ = write!(
        h,
        "<form id=confirm-form method=post action=\"{base}restore\">"
    );
    for (k, v) in &f.0 {
        if k == "action" {
            continue;
        }
        let _ = write!(
            h,
            "<input type=hidden name=\"{}\" value=\"{}\">",
            esc(k),
            esc(&String::from_utf8_lossy(v))
        );
    }
    h.push_str(
        "<button name=action value=restore id=confirm class=primary>Restore now</button></form>",
    );
}

/// `write`, `overwrite`, `unchanged`, `skip`, `keep-both`: as `restore --dry-run --json`.
fn action_name(a: crate::ops::restore::Action) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl Ctx<'_> {
    pub fn job(&self, n: &str) -> Response {
        let base = self.base();
        let Some(st) = n.parse().ok().and_then(|n| self.c.jobs.status(n)) else {
            return error_page(base, 404, &format!("no restore job {n}"));
        };
        let state = match st.state {
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
        };
        let mut h = format!(
            "<h1>Restore {}</h1><div id=job data-job={} data-state={state} data-url=\"{base}jobs/{}.json\">\
             <p>Recovery point <code>{}</code> to {}</p>\
             <progress id=job-progress max={} value={}></progress>\
             <p id=job-counts>{} of {} files, {} of {}</p><p id=job-result class=result>{}</p><ul id=job-errors>",
            st.id,
            st.id,
            st.id,
            esc(&st.snapshot),
            esc(&st.destination),
            st.bytes_total.max(1),
            st.bytes_done,
            st.files_done,
            st.files_total,
            size(st.bytes_done),
            size(st.bytes_total),
            esc(st.result.as_deref().unwrap_or("running…"))
        );
        for e in &st.errors {
            let _ = write!(h, "<li>{}</li>", esc(e));
        }
        h.push_str("</ul></div>");
        if matches!(st.state, State::Running) {
            // Without the script the page still moves on.
            h.push_str("<noscript><meta http-equiv=refresh content=2></noscript>");
        }
        html(200, page(base, "Restore", "", &h))
    }

    pub(crate) fn job_json(&self, n: &str) -> Response {
        match n.parse().ok().and_then(|n| self.c.jobs.status(n)) {
            Some(st) => secure(
                Response::new(200)
                    .with_header("Content-Type", "application/json")
                    .with_bytes(serde_json::to_vec(&st).unwrap_or_default()),
            ),
            None => secure(Response::text(404, "no such job\n")),
        }
    }
}
