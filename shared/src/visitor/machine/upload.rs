//! Sending a file the visitor picked: the chat's limits are asked for first, the file is
//! judged against them (`FileRefusal::of`), and only a file they allow has its bytes read
//! and uploaded. The answer to the upload is applied with the other answers.

use crate::gms::{ChatOperation, FileLimits, FilePart, RetryPolicy};
use crate::visitor::io::{
    Effect, FileRefusal, GmsResult, NetFailure, Notice, PickedFile, RequestId,
};

use super::{Machine, Purpose};

impl Machine {
    /// Whether a file is on its way: from the pick until GMS answers its upload (or it is
    /// refused on the way).
    pub fn uploading(&self) -> bool {
        self.picked.is_some() || self.pending.values().any(|p| p.purpose == Purpose::Upload)
    }

    pub(super) fn file_picked(&mut self, file: PickedFile, out: &mut Vec<Effect>) {
        // The limits change with every file sent, so they are asked for every time.
        let operation = ChatOperation::FileLimits;
        if let Some(id) = self.chat_request(Purpose::FileLimits, operation, RetryPolicy::GMS, out) {
            self.picked = Some((id, file));
        }
    }

    /// The chat's limits: the file they allow is read; one they refuse, or limits that could
    /// not be had, is a notice. An answer without limits allows any file (GMS then judges
    /// the upload itself).
    pub(super) fn limits_answered(
        &mut self,
        id: RequestId,
        current: bool,
        result: &GmsResult,
        out: &mut Vec<Effect>,
    ) {
        // Another file picked since replaced this one.
        let Some((_, file)) = self.picked.take_if(|(picked, _)| *picked == id) else { return };
        if !current {
            return;
        }
        let refusal = match result {
            GmsResult::Answer(response) => FileLimits::from_response(response)
                .and_then(|limits| FileRefusal::of(&limits, &file.name, file.size)),
            GmsResult::Failed(failure) => {
                self.notice = Some(Notice::FileFailed(*failure));
                return;
            }
        };
        match refusal {
            Some(refusal) => self.notice = Some(Notice::FileRefused(refusal)),
            None => {
                self.picked = Some((id, file));
                out.push(Effect::ReadFile { id });
            }
        }
    }

    /// The picked file's bytes: uploaded to the chat, if it still runs.
    pub(super) fn file_read(
        &mut self,
        id: RequestId,
        bytes: Option<Vec<u8>>,
        out: &mut Vec<Effect>,
    ) {
        let Some((_, file)) = self.picked.take_if(|(picked, _)| *picked == id) else { return };
        let Some(bytes) = bytes else {
            self.notice = Some(Notice::FileFailed(NetFailure::Network));
            return;
        };
        let file = FilePart { file_name: file.name, content_type: file.content_type, bytes };
        let operation = ChatOperation::Upload { file, description: None, user_data: Vec::new() };
        self.chat_request(Purpose::Upload, operation, RetryPolicy::GMS, out);
    }
}
