use shared::gms::{ChatOperation, EventType, FileLimits, FilePart, Verdict};

use super::Sim;

fn upload(name: &str, bytes: usize) -> ChatOperation {
    ChatOperation::Upload {
        file: FilePart {
            file_name: name.into(),
            content_type: "text/plain".into(),
            bytes: vec![b'x'; bytes],
        },
        description: Some("a note".into()),
        user_data: vec![],
    }
}

#[tokio::test]
async fn files_are_limited_uploaded_downloaded_and_deleted() -> anyhow::Result<()> {
    let sim = Sim::start(&[
        "--upload-max-files",
        "2",
        "--upload-max-file-size",
        "100",
        "--download-attempts",
        "1",
    ])
    .await?;
    let (credentials, _) = sim.gms.create("Jane", vec![]).await?;

    let limits = sim.gms.call(&ChatOperation::FileLimits, &credentials).await?;
    let limits = FileLimits::from_response(&limits).expect("limits notice");
    assert_eq!((limits.upload_max_files, limits.upload_max_file_size), (Some(2), Some(100)));
    assert!(limits.allows_file_name("a.txt") && !limits.allows_file_name("a.exe"));

    let uploaded = sim.gms.call(&upload("a.txt", 10), &credentials).await?;
    assert_eq!(uploaded.verdict(), Verdict::Ok);
    let file_id = uploaded.user_data.get("file-id").cloned().expect("file-id");
    let transcript = sim.refresh(&credentials, 2).await?;
    let event = &transcript.messages[0];
    assert_eq!(event.event_type, EventType::FileUploaded);
    assert_eq!(event.text.as_deref(), Some(file_id.as_str()));
    assert_eq!(event.user_data["file-name"], "a.txt");
    assert_eq!(event.user_data["file-description"], "a note");

    let refusals = [(upload("big.txt", 101), 202), (upload("run.exe", 1), 203)];
    for (operation, code) in refusals {
        let refused = sim.gms.call(&operation, &credentials).await?;
        assert_eq!((refused.status_code, refused.errors[0].code), (2, code));
    }
    sim.gms.call(&upload("b.txt", 1), &credentials).await?;
    let third = sim.gms.call(&upload("c.txt", 1), &credentials).await?;
    assert_eq!(third.errors[0].code, 201, "the third file is over the count");

    let download = ChatOperation::Download { file_id: file_id.clone() };
    let raw = sim.gms.raw(&download, Some(&credentials)).await?;
    assert_eq!((raw.status, raw.body.len()), (200, 10));
    let again = sim.gms.call(&download, &credentials).await?;
    assert_eq!(again.status_code, 2, "download attempts are limited");

    let deleted =
        sim.gms.call(&ChatOperation::Delete { file_id: file_id.clone() }, &credentials).await?;
    assert_eq!(deleted.verdict(), Verdict::Ok);
    let last = sim.refresh(&credentials, 0).await?.next_position.unwrap_or(1) - 1;
    let tail = sim.refresh(&credentials, last).await?;
    assert_eq!(tail.messages[0].event_type, EventType::FileDeleted);
    let gone = sim.gms.call(&ChatOperation::Delete { file_id }, &credentials).await?;
    assert_eq!(gone.status_code, 2);
    sim.running.stop().await;
    Ok(())
}
