//! The documents' operations of [`AsyncStore`], as async functions.

use std::io::{Read, Write};

use kgstore_core::{
    Document, DocumentMeta, DocumentPage, DocumentQuery, DocumentRead, DocumentWrite, Result,
    WriteOptions,
};

use crate::AsyncStore;

impl AsyncStore {
    /// See [`DocumentRead::read_document`].
    pub async fn read_document(&self, key: impl Into<String>) -> Result<Vec<u8>> {
        let key = key.into();
        self.run(move |s| s.read_document(&key)).await
    }

    /// See [`DocumentRead::get_document`].
    pub async fn get_document(&self, key: impl Into<String>) -> Result<Document> {
        let key = key.into();
        self.run(move |s| s.get_document(&key)).await
    }

    /// See [`DocumentRead::find_document`].
    pub async fn find_document(&self, key: impl Into<String>) -> Result<Option<Document>> {
        let key = key.into();
        self.run(move |s| s.find_document(&key)).await
    }

    /// See [`DocumentRead::stat_document`].
    pub async fn stat_document(&self, key: impl Into<String>) -> Result<DocumentMeta> {
        let key = key.into();
        self.run(move |s| s.stat_document(&key)).await
    }

    /// See [`DocumentRead::document_exists`].
    pub async fn document_exists(&self, key: impl Into<String>) -> Result<bool> {
        let key = key.into();
        self.run(move |s| s.document_exists(&key)).await
    }

    /// See [`DocumentRead::count_documents`].
    pub async fn count_documents(&self) -> Result<u64> {
        self.run(|s| s.count_documents()).await
    }

    /// See [`DocumentRead::list_documents`].
    pub async fn list_documents(&self, query: DocumentQuery) -> Result<DocumentPage> {
        self.run(move |s| s.list_documents(&query)).await
    }

    /// See [`DocumentRead::read_documents`].
    pub async fn read_documents(&self, keys: Vec<String>) -> Result<Vec<Option<Document>>> {
        self.run(move |s| {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            s.read_documents(&keys)
        })
        .await
    }

    /// Streams a document into `out` with bounded memory, off the runtime; the
    /// writer comes back with the metadata. See [`DocumentRead::read_document_to`].
    pub async fn read_document_to<W: Write + Send + 'static>(
        &self,
        key: impl Into<String>,
        mut out: W,
    ) -> Result<(W, DocumentMeta)> {
        let key = key.into();
        self.run(move |s| {
            let meta = s.read_document_to(&key, &mut out)?;
            Ok((out, meta))
        })
        .await
    }

    /// See [`kgstore_core::Store::write_document`].
    pub async fn write_document(
        &self,
        key: impl Into<String>,
        content: impl Into<Vec<u8>>,
    ) -> Result<DocumentMeta> {
        let (key, content) = (key.into(), content.into());
        self.run(move |s| s.write_document(&key, content)).await
    }

    /// See [`kgstore_core::Store::write_document_with`].
    pub async fn write_document_with(
        &self,
        key: impl Into<String>,
        content: impl Into<Vec<u8>>,
        options: WriteOptions,
    ) -> Result<DocumentMeta> {
        let (key, content) = (key.into(), content.into());
        self.run(move |s| s.write_document_with(&key, content, &options))
            .await
    }

    /// Streams a document in from `reader` with bounded memory, off the runtime.
    /// See [`kgstore_core::Store::write_document_from`].
    pub async fn write_document_from(
        &self,
        key: impl Into<String>,
        reader: impl Read + Send + 'static,
        options: WriteOptions,
    ) -> Result<DocumentMeta> {
        let key = key.into();
        self.run(move |s| s.write_document_from(&key, reader, &options))
            .await
    }

    /// See [`kgstore_core::Store::write_documents`].
    pub async fn write_documents(&self, writes: Vec<DocumentWrite>) -> Result<Vec<DocumentMeta>> {
        self.run(move |s| s.write_documents(writes)).await
    }

    /// See [`kgstore_core::Store::delete_document`].
    pub async fn delete_document(&self, key: impl Into<String>) -> Result<DocumentMeta> {
        let key = key.into();
        self.run(move |s| s.delete_document(&key)).await
    }

    /// See [`kgstore_core::Store::remove_document`].
    pub async fn remove_document(&self, key: impl Into<String>) -> Result<bool> {
        let key = key.into();
        self.run(move |s| s.remove_document(&key)).await
    }
}
