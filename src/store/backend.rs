//! The raw backend: opaque sealed blobs with ids, versions and index tags.
//! It never sees a key or a plaintext. SQLite is the embedded default
//! ([`super::sqlite`]); a shared database server can implement the same trait.

use crate::error::Result;

/// A sealed token record as stored.
#[derive(Clone, Debug)]
pub struct RawToken {
    pub token_id: i64,
    pub slot_id: i64,
    pub version: i64,
    pub blob: Vec<u8>,
}

/// A sealed object record as stored.
#[derive(Clone, Debug)]
pub struct RawObject {
    pub obj_id: i64,
    pub version: i64,
    /// Which key seals it: 0 = the installation key (public objects), 1 = the
    /// token key (private objects).
    pub key_class: u8,
    pub blob: Vec<u8>,
}

/// Seals a record once its id and version are known (they go into the AAD).
pub type SealFn<'a> = &'a dyn Fn(i64, i64) -> Result<Vec<u8>>;

/// The keyed contribution of one object version to its token's rollback
/// accumulator (see docs/store-format.md). The backend XORs these into the
/// token's accumulator in the same transaction as the object write.
pub type AccFn<'a> = &'a dyn Fn(i64, i64) -> [u8; 32];

/// Storage of sealed records. Every write is atomic and durable when it
/// returns; version checks make concurrent writers safe (compare-and-swap).
pub trait Backend: Send + Sync {
    /// All token records.
    fn tokens(&self) -> Result<Vec<RawToken>>;
    /// One token record.
    fn token(&self, token_id: i64) -> Result<Option<RawToken>>;
    /// Creates a token in `slot_id`; `None` when the slot was taken meanwhile.
    fn create_token(&self, slot_id: i64, seal: SealFn<'_>) -> Result<Option<i64>>;
    /// Replaces a token record if it is still at `expected_version`; with
    /// `wipe_objects` all the token's objects go in the same transaction.
    fn update_token(
        &self,
        token_id: i64,
        expected_version: i64,
        wipe_objects: bool,
        seal: SealFn<'_>,
    ) -> Result<bool>;
    /// Inserts an object; returns its id.
    fn insert_object(
        &self,
        token_id: i64,
        key_class: u8,
        tags: &[[u8; 16]],
        seal: SealFn<'_>,
        acc: AccFn<'_>,
    ) -> Result<i64>;
    /// Replaces an object if still at `expected_version`; `false` on conflict
    /// or when it is gone.
    #[allow(clippy::too_many_arguments)] // one atomic write: every part is needed
    fn update_object(
        &self,
        token_id: i64,
        obj_id: i64,
        expected_version: i64,
        key_class: u8,
        tags: &[[u8; 16]],
        seal: SealFn<'_>,
        acc: AccFn<'_>,
    ) -> Result<bool>;
    /// Deletes an object; `false` when it was already gone.
    fn delete_object(&self, token_id: i64, obj_id: i64, acc: AccFn<'_>) -> Result<bool>;
    /// Recomputes the token's accumulator from the (id, version) pairs on
    /// disk and compares it with the stored one: `false` means some object
    /// row was rolled back, restored or removed behind the module's back.
    fn verify_accumulator(&self, token_id: i64, acc: AccFn<'_>) -> Result<bool>;
    /// One object.
    fn object(&self, token_id: i64, obj_id: i64) -> Result<Option<RawObject>>;
    /// Ids of the objects carrying an index tag.
    fn objects_by_tag(&self, token_id: i64, tag: &[u8; 16]) -> Result<Vec<i64>>;
    /// Ids and versions of the token's objects (optionally only public ones).
    fn object_ids(&self, token_id: i64, include_private: bool) -> Result<Vec<(i64, i64)>>;
    /// Ids of objects changed or deleted after `seq`, and the newest seq.
    fn changes_since(&self, token_id: i64, seq: i64) -> Result<(Vec<i64>, i64)>;
    /// The newest change sequence number of the whole store.
    fn current_seq(&self) -> Result<i64>;
    /// Appends audit entries in one transaction, chaining each to the last
    /// MAC in the log: `chain(previous_mac, seq, entry)` gives the new MAC.
    fn append_audit(&self, entries: &[Vec<u8>], chain: AuditChainFn<'_>) -> Result<()>;
    /// The anchor (seq, MAC) left by the last rotation, and the entries
    /// after it, oldest first.
    #[allow(clippy::type_complexity)]
    fn audit_entries(&self) -> Result<((i64, Vec<u8>), Vec<(i64, Vec<u8>, Vec<u8>)>)>;
    /// Deletes entries up to `through_seq`, keeping their last MAC as the
    /// anchor so verification of the rest still works.
    fn rotate_audit(&self, through_seq: i64) -> Result<()>;
}

/// Chains an audit entry: (previous MAC, seq, entry bytes) -> MAC.
pub type AuditChainFn<'a> = &'a dyn Fn(&[u8], i64, &[u8]) -> Vec<u8>;
