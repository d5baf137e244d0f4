// Package chunk splits content into content-defined chunks, addresses them by
// CID, describes files with manifests, and keeps them in a verified on-disk
// store.
//
// # Chunking
//
// A Chunker cuts a stream with a gear rolling hash and FastCDC normalized
// chunking (DefaultParams: 256 KiB min, 1 MiB average, 4 MiB max), so that an
// edit changes only the chunks around it.
//
// # Addressing
//
// A chunk's CID is CIDv1 raw sha2-256 of its bytes (SumChunk, VerifyChunk).
// A file is described by a Manifest, encoded in canonical CBOR; the
// manifest's CID (CIDv1 cbor sha2-256) is the content's CID.
//
// # Store
//
// Store keeps chunks as files under chunks/ and an index of chunks,
// references and manifests in bbolt. Writes are atomic, reads verify, and a
// corrupt chunk is quarantined so that it can be fetched again.
// chunktest holds the suite every store implementation runs.
//
// The manifest format is specified in docs/MANIFEST.md and the store layout in
// docs/STORE.md.
package chunk
