//! `GET /v1/hours/{service}` over real sockets: a schedule of the relay's own file read in
//! its time zone, GMS's Calendar Service (gms-sim's) asked at most once a minute per
//! service, and what the relay says when it knows nothing or GMS answers nothing usable.

use anyhow::Result;
use serde_json::{Value, json};
use shared::relay_api::{HOURS_PATH, OfficeHours};

use super::Setup;
use crate::harness::{Options, scratch_dir};

/// The relay's answer for `service`: its status, and the hours when it gave them.
async fn hours(setup: &Setup, service: &str) -> Result<(u16, Option<OfficeHours>)> {
    let url = format!("{}{HOURS_PATH}/{service}", setup.system.relay_url);
    let response = setup.http.get(url).send().await?;
    let status = response.status().as_u16();
    if status == 200 {
        let cache = response.headers().get("cache-control").and_then(|v| v.to_str().ok());
        assert_eq!(cache, Some("max-age=30"));
    }
    let text = response.text().await?;
    Ok((status, (status == 200).then(|| serde_json::from_str(&text)).transpose()?))
}

async fn set_calendar(setup: &Setup, name: &str, body: Value) -> Result<()> {
    let (status, text) = setup.admin.post(&format!("/sim/office-hours/{name}"), body).await?;
    anyhow::ensure!(status == 204, "HTTP {status}: {text}");
    Ok(())
}

async fn calendar_requests(setup: &Setup) -> Result<u64> {
    Ok(setup.admin.stats().await?["requests"]["office_hours"].as_u64().unwrap_or(0))
}

#[tokio::test]
async fn the_relay_answers_each_services_hours_from_its_file_or_from_gms() -> Result<()> {
    let dir = scratch_dir("office-hours")?;
    let file = dir.join("hours.ini");
    std::fs::write(
        &file,
        "# every day, all day\n[always]\n_bh_regular1 = Mon-Sun 00:00-24:00\n_timezone = UTC\n\n\
         [later]\n_bh_regular1 = Mon-Fri 9:00-17:00\n_effective_dates1 = 2099-01-05 to 2099-01-09\n\
         _timezone = Europe/Paris\n\n[gms-open]\ngms = office\n\n[gms-broken]\ngms = broken\n\n\
         [gms-unknown]\ngms = nobody\n",
    )?;
    let path = file.to_string_lossy().into_owned();
    let setup = Setup::start(Options::sim(&[]).relay(&["--office-hours", &path])).await?;

    assert_eq!(
        hours(&setup, "always").await?,
        (200, Some(OfficeHours { open: true, next_open: None }))
    );
    // Monday 2099-01-05 at 9:00 in Paris (UTC+1).
    let later = Some(OfficeHours { open: false, next_open: Some(4_071_286_800_000 - 3_600_000) });
    assert_eq!(hours(&setup, "later").await?, (200, later));
    assert_eq!(hours(&setup, "nowhere").await?, (204, None), "a service without hours");

    // From GMS: open now for an hour; asked once however many visitors open the chat.
    set_calendar(
        &setup,
        "office",
        json!({"periods": [{"startInMinutes": -60, "endInMinutes": 60}]}),
    )
    .await?;
    let before = calendar_requests(&setup).await?;
    for _ in 0..5 {
        assert_eq!(
            hours(&setup, "gms-open").await?,
            (200, Some(OfficeHours { open: true, next_open: None }))
        );
    }
    assert_eq!(calendar_requests(&setup).await? - before, 1);
    // GMS's error, and a service GMS does not know, are not hours.
    set_calendar(&setup, "broken", json!({"error": "calendar unavailable"})).await?;
    assert_eq!(hours(&setup, "gms-broken").await?, (204, None));
    assert_eq!(hours(&setup, "gms-unknown").await?, (204, None));
    // Not kept: GMS is asked again.
    let asked = calendar_requests(&setup).await?;
    hours(&setup, "gms-broken").await?;
    assert_eq!(calendar_requests(&setup).await?, asked + 1);
    setup.system.stop().await?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

#[tokio::test]
async fn a_closed_office_in_gms_says_when_it_opens() -> Result<()> {
    let dir = scratch_dir("office-hours")?;
    let file = dir.join("hours.ini");
    std::fs::write(&file, "[svc]\ngms = office\n")?;
    let path = file.to_string_lossy().into_owned();
    let setup = Setup::start(Options::sim(&[]).relay(&["--office-hours", &path])).await?;
    set_calendar(
        &setup,
        "office",
        json!({"periods": [{"startInMinutes": 600, "endInMinutes": 1080}, {"startInMinutes": 2040, "endInMinutes": 2520}]}),
    )
    .await?;
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
    let (status, answer) = hours(&setup, "svc").await?;
    assert_eq!(status, 200);
    let answer = answer.ok_or_else(|| anyhow::anyhow!("no hours"))?;
    assert!(!answer.open);
    // Ten hours from when the sim was told, to the second GMS writes.
    let next = u128::from(answer.next_open.unwrap_or(0));
    let expected = started + 600 * 60_000;
    assert!(next.abs_diff(expected) < 5_000, "{next} vs {expected}");
    setup.system.stop().await?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
