// File: qlake/ingest/gzip_stream.h
//
// Streaming gzip decompression on ISA-L (igzip), as an arrow::io::InputStream, for the
// flat files (one .csv.gz per dataset per day). It replaces Arrow's zlib-based
// arrow::io::CompressedInputStream in the chain
//
//   raw (local file or S3 object) -> GzipInputStream -> arrow::csv::StreamingReader
//
// and is several times faster at inflating (see bench/gzip_bench.cc).
//
// What it checks: every gzip member's header (magic, method, optional FHCRC) and trailer
// (CRC-32 and ISIZE of the uncompressed data). Concatenated members (what `cat a.gz b.gz`
// or pigz/bgzip-style writers produce) are decompressed one after the other into one
// stream, as gzip(1) does. Anything else after a member is an error. Decompressed bytes
// are handed out as they are produced, so a corrupt member is reported only when the
// reader reaches its end (the CRC covers the whole member): consumers that must not act
// on damaged data have to reach end of stream before committing.
//
// Errors (arrow::Status, never exceptions); each message names options.source_name and
// the compressed byte offset, e.g.
//   IOError: "unexpected end of gzip data at byte 1048576 of s3://b/k.csv.gz: the file
//             is truncated; re-fetch it"
//   Invalid: not gzip at all, a bad header, corrupt deflate data, a CRC-32 or length
//            mismatch, trailing bytes that are not another gzip member.
//   An error of the raw stream is passed on with its code, prefixed with the source.
// Errors are sticky: after one, every Read returns the same Status.
//
// Memory: the input buffer (options.input_buffer_size; none when the raw stream is
// zero-copy, e.g. a BufferReader) plus ISA-L's ~90 KiB state, independent of file size.
//
// Usage:
//   GzipStreamOptions opts;
//   opts.source_name = key;
//   ARROW_ASSIGN_OR_RAISE(auto gz, GzipInputStream::Make(std::move(raw), opts));
//   ARROW_ASSIGN_OR_RAISE(auto reader, arrow::csv::StreamingReader::Make(
//                                          io_context, gz, read, parse, convert));
//
// Thread safety: one reader at a time (Read, Close, Abort must not run concurrently;
// arrow::csv::StreamingReader issues its reads one after the other, which is fine).
// stats(), Tell() and closed() may be called from any thread at any time, e.g. by a
// progress reporter.

#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <arrow/buffer.h>
#include <arrow/io/interfaces.h>
#include <arrow/memory_pool.h>
#include <arrow/result.h>
#include <arrow/status.h>

namespace qlake::ingest {

struct GzipStreamOptions {
  // Behaviour
  /// Names the input in error messages: a file path or an S3 key. Empty reads as
  /// "<gzip stream>".
  std::string source_name;

  // Performance
  /// Bytes requested from the raw stream per Read. On S3 every Read of the raw stream
  /// is a ranged GET, so keep this large; the cost is this much memory per open stream.
  /// Range: 1 .. 1 GiB. Default 1 MiB.
  int64_t input_buffer_size = int64_t{1} << 20;
  /// Allocates the input buffer and the Buffers returned by Read(int64_t). Not owned;
  /// must outlive the stream.
  arrow::MemoryPool* pool = arrow::default_memory_pool();

  static GzipStreamOptions Defaults() { return {}; }
  /// Invalid if input_buffer_size is out of range or pool is null.
  arrow::Status Validate() const;
};

/// Counters of one stream. Monotonic; a snapshot, not updated behind the caller's back.
struct GzipStreamStats {
  /// Compressed bytes consumed by the decoder so far (ISA-L may hold up to ~8 more it
  /// has read ahead, which count once it uses them). Equals the file size at the end.
  int64_t compressed_bytes = 0;
  /// Uncompressed bytes handed to the caller; same as Tell().
  int64_t uncompressed_bytes = 0;
  /// gzip members completed with a verified trailer.
  int64_t members = 0;
};

/// A read-only, forward-only stream of the decompressed contents of a gzip file.
///
/// Owns a reference to the raw stream and closes it in Close() / Abort(). Read returns
/// fewer bytes than asked for only at the end of the data (and then 0 on every later
/// call), or an error.
class GzipInputStream : public arrow::io::InputStream {
  class Impl;
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  /// Wrap `raw`, positioned at the first byte of gzip data. Nothing is read yet, so a
  /// file that is not gzip is reported by the first Read. Fails only on invalid options
  /// or a null raw stream.
  static arrow::Result<std::shared_ptr<GzipInputStream>> Make(
      std::shared_ptr<arrow::io::InputStream> raw, GzipStreamOptions options = {});

  GzipInputStream(PrivateTag, std::unique_ptr<Impl> impl);  // use Make()
  ~GzipInputStream() override;
  GzipInputStream(const GzipInputStream&) = delete;
  GzipInputStream& operator=(const GzipInputStream&) = delete;

  /// Decompress up to nbytes into out (caller-owned, at least nbytes long). Returns the
  /// number of bytes written.
  arrow::Result<int64_t> Read(int64_t nbytes, void* out) override;
  /// Like Read(nbytes, out) into a new buffer from options.pool, sized to what was read.
  arrow::Result<std::shared_ptr<arrow::Buffer>> Read(int64_t nbytes) override;

  /// Close the raw stream and free the buffers. Idempotent.
  arrow::Status Close() override;
  /// Abort the raw stream (e.g. stop an S3 download early) and free the buffers.
  arrow::Status Abort() override;
  bool closed() const override;
  /// Uncompressed bytes returned so far.
  arrow::Result<int64_t> Tell() const override;

  GzipStreamStats stats() const;
  const std::string& source_name() const;

 private:
  std::unique_ptr<Impl> impl_;
};

/// Decompress a whole in-memory gzip file (all members) into one buffer from `pool`,
/// with the same checks and error messages as GzipInputStream. For small files (minute
/// and day aggregates): the output is held in memory at once, so large inputs should be
/// streamed instead. `gz` is only read during the call.
arrow::Result<std::shared_ptr<arrow::Buffer>> GunzipBuffer(
    const arrow::Buffer& gz, std::string_view source_name,
    arrow::MemoryPool* pool = arrow::default_memory_pool());

}  // namespace qlake::ingest
