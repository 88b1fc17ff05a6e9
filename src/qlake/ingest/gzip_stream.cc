// File: qlake/ingest/gzip_stream.cc
//
// One decoder loop (Inflater) serves both GzipInputStream and GunzipBuffer. Per gzip
// member it runs two phases on one ISA-L inflate_state:
//   header  isal_read_gzip_header() with a header struct that lives as long as the
//           member. isal_inflate() can parse the header itself (crc_flag = ISAL_GZIP),
//           but it does so with a fresh struct on its stack on every call, so a header
//           whose optional fields (FEXTRA/FNAME/FCOMMENT/FHCRC) are split across two
//           input chunks resumes with undefined flags and a reset header CRC (ISA-L 2.30,
//           igzip_inflate.c). Parsing it here first sets wrapper_flag, and isal_inflate()
//           then skips its own header step.
//   body    isal_inflate() with crc_flag = ISAL_GZIP: decodes the deflate blocks straight
//           into the caller's memory and checks the 8-byte trailer (CRC-32 and ISIZE,
//           modulo 2^32) against what it produced, ending in ISAL_BLOCK_FINISH.
// After a member, input that follows starts the next member (isal_inflate_reset()
// keeps next_in/avail_in). With ISAL_GZIP, ISA-L has consumed exactly the member's bytes
// when it reaches ISAL_BLOCK_FINISH: its bit buffer holds at most 64 bits, all of them
// trailer, so nothing of the next member is lost.
//
// End of data is only ever decided at a member boundary with the raw stream exhausted;
// running out of input anywhere else is truncation.

#include "qlake/ingest/gzip_stream.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cstring>
#include <limits>
#include <utility>

#include <arrow/io/memory.h>

#include <isa-l/igzip_lib.h>

namespace qlake::ingest {

namespace {

constexpr int64_t kMaxInputBufferSize = int64_t{1} << 30;
// isal_inflate takes uint32_t lengths.
constexpr int64_t kMaxIsalLength = std::numeric_limits<uint32_t>::max();
static_assert(kMaxInputBufferSize <= kMaxIsalLength);
constexpr std::string_view kUnnamedSource = "<gzip stream>";
// Deflate cannot expand more than 1032:1 (a 258-byte match per 2 bits at best, RFC 1951).
constexpr int64_t kMaxDeflateRatio = 1032;
constexpr int64_t kMinGrowth = int64_t{64} << 10;
// Smallest gzip member: 10-byte header, 2-byte empty fixed block, 8-byte trailer.
constexpr int64_t kMinMemberSize = 20;

std::string_view DeflateErrorText(int rc) {
  switch (rc) {
    case ISAL_INVALID_BLOCK:
      return "invalid block";
    case ISAL_INVALID_SYMBOL:
      return "invalid Huffman symbol";
    case ISAL_INVALID_LOOKBACK:
      return "back-reference before the start of the data";
    default:
      return "unknown error";
  }
}

class Inflater {
 public:
  Inflater(std::shared_ptr<arrow::io::InputStream> raw, const GzipStreamOptions& options)
      : raw_(std::move(raw)),
        source_(options.source_name.empty() ? std::string(kUnnamedSource)
                                            : options.source_name),
        chunk_size_(options.input_buffer_size),
        pool_(options.pool),
        zero_copy_(raw_->supports_zero_copy()) {}

  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  arrow::Status Init() {
    state_ = std::make_unique<inflate_state>();
    isal_inflate_init(state_.get());
    if (!zero_copy_) {
      ARROW_ASSIGN_OR_RAISE(copy_buf_, arrow::AllocateBuffer(chunk_size_, pool_));
    }
    StartMember();
    return arrow::Status::OK();
  }

  // Writes up to n decompressed bytes to out; fewer only at the end of the data.
  arrow::Result<int64_t> Inflate(uint8_t* out, int64_t n) {
    if (!error_.ok()) return error_;
    int64_t produced = 0;
    arrow::Status st = Loop(out, n, &produced);
    compressed_.store(Consumed(), std::memory_order_relaxed);
    if (!st.ok()) {
      error_ = std::move(st);
      return error_;
    }
    uncompressed_.fetch_add(produced, std::memory_order_relaxed);
    return produced;
  }

  // True once all members are decoded and the raw stream is exhausted. May read ahead.
  arrow::Result<bool> AtEnd() {
    if (!error_.ok()) return error_;
    if (phase_ == Phase::kEnd) return true;
    if (phase_ != Phase::kMemberEnd) return false;
    if (state_->avail_in == 0 && !raw_eof_) {
      arrow::Status st = Refill();
      if (!st.ok()) {
        error_ = std::move(st);
        return error_;
      }
    }
    if (state_->avail_in != 0) return false;
    phase_ = Phase::kEnd;
    return true;
  }

  // Frees the buffers; every later Inflate fails with `why`.
  void Release(arrow::Status why) {
    if (error_.ok()) error_ = std::move(why);
    state_.reset();
    copy_buf_.reset();
    chunk_.reset();
  }

  arrow::io::InputStream& raw() { return *raw_; }
  const std::string& source() const { return source_; }

  GzipStreamStats stats() const {
    GzipStreamStats s;
    s.compressed_bytes = compressed_.load(std::memory_order_relaxed);
    s.uncompressed_bytes = uncompressed_.load(std::memory_order_relaxed);
    s.members = members_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  enum class Phase { kHeader, kBody, kMemberEnd, kEnd };

  arrow::Status Loop(uint8_t* out, int64_t n, int64_t* produced) {
    while (*produced < n) {
      if (state_->avail_in == 0 && !raw_eof_) ARROW_RETURN_NOT_OK(Refill());
      // From here on, avail_in == 0 implies the raw stream is exhausted.
      switch (phase_) {
        case Phase::kEnd:
          return arrow::Status::OK();

        case Phase::kMemberEnd:
          if (state_->avail_in == 0) {
            phase_ = Phase::kEnd;
            return arrow::Status::OK();
          }
          // Check the magic here, where the byte is at hand, for a clear message.
          if (state_->next_in[0] != 0x1f ||
              (state_->avail_in > 1 && state_->next_in[1] != 0x8b)) {
            return TrailingGarbage(Consumed());
          }
          StartMember();
          break;

        case Phase::kHeader: {
          const int rc = isal_read_gzip_header(state_.get(), &header_);
          if (rc == ISAL_DECOMP_OK) {
            phase_ = Phase::kBody;
          } else if (rc < 0) {
            return HeaderError(rc);
          } else if (state_->avail_in == 0) {
            // ISAL_END_INPUT: the rest of the header is in the next chunk, if any.
            if (raw_eof_) return Truncated();
          } else {
            return NoProgress();
          }
          break;
        }

        case Phase::kBody: {
          const int64_t want = std::min(n - *produced, kMaxIsalLength);
          const uint32_t in_before = state_->avail_in;
          state_->next_out = out + *produced;
          state_->avail_out = static_cast<uint32_t>(want);
          const int rc = isal_inflate(state_.get());
          const int64_t got = want - state_->avail_out;
          *produced += got;
          if (rc != ISAL_DECOMP_OK) return BodyError(rc);
          if (state_->block_state == ISAL_BLOCK_FINISH) {
            members_.fetch_add(1, std::memory_order_relaxed);
            phase_ = Phase::kMemberEnd;
          } else if (got == 0 && state_->avail_in == in_before) {
            if (state_->avail_in == 0) return Truncated();
            return NoProgress();
          }
          break;
        }
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status Refill() {
    int64_t got = 0;
    if (zero_copy_) {
      auto r = raw_->Read(chunk_size_);
      if (!r.ok()) return RawError(r.status());
      chunk_ = std::move(r).ValueUnsafe();
      got = chunk_->size();
      // ISA-L only reads through next_in; the pointer is not const for its own reasons.
      state_->next_in = const_cast<uint8_t*>(chunk_->data());
    } else {
      auto r = raw_->Read(chunk_size_, copy_buf_->mutable_data());
      if (!r.ok()) return RawError(r.status());
      got = *r;
      state_->next_in = copy_buf_->mutable_data();
    }
    if (got < 0 || got > chunk_size_) {
      return arrow::Status::IOError(source_, ": the raw stream returned ", got,
                                    " bytes for a read of ", chunk_size_);
    }
    state_->avail_in = static_cast<uint32_t>(got);
    if (got == 0) raw_eof_ = true;
    for (int64_t i = 0; i < got && first_len_ < first_bytes_.size(); ++i) {
      first_bytes_[first_len_++] = state_->next_in[i];
    }
    raw_bytes_ += got;
    return arrow::Status::OK();
  }

  void StartMember() {
    member_start_ = Consumed();
    isal_inflate_reset(state_.get());  // keeps next_in / avail_in
    state_->crc_flag = ISAL_GZIP;
    header_ = isal_gzip_header{};  // also zeroes `flags`, which init leaves alone
    isal_gzip_header_init(&header_);
    phase_ = Phase::kHeader;
  }

  // Compressed bytes the decoder has taken in (including its small read-ahead).
  int64_t Consumed() const { return state_ ? raw_bytes_ - state_->avail_in : raw_bytes_; }
  int64_t Member() const { return members_.load(std::memory_order_relaxed) + 1; }

  bool StartsLikeGzip() const {
    return (first_len_ < 1 || first_bytes_[0] == 0x1f) &&
           (first_len_ < 2 || first_bytes_[1] == 0x8b);
  }

  arrow::Status NotGzip() const {
    std::string hex;
    bool printable = true;
    for (size_t i = 0; i < first_len_; ++i) {
      constexpr char kDigits[] = "0123456789abcdef";
      if (i > 0) hex += ' ';
      hex += kDigits[first_bytes_[i] >> 4];
      hex += kDigits[first_bytes_[i] & 0xf];
      const int c = first_bytes_[i];
      printable = printable && (std::isprint(c) != 0 || std::isspace(c) != 0);
    }
    return arrow::Status::Invalid(
        source_, " is not gzip data: it starts with bytes ", hex,
        ", not the gzip magic 1f 8b",
        printable ? " (it looks like text: is it already decompressed?)" : "");
  }

  arrow::Status Truncated() const {
    if (raw_bytes_ == 0) {
      return arrow::Status::IOError(source_,
                                    " is empty (0 bytes), not gzip data: the download is "
                                    "incomplete or the object is empty; re-fetch it");
    }
    if (!StartsLikeGzip()) return NotGzip();
    return arrow::Status::IOError("unexpected end of gzip data at byte ", raw_bytes_,
                                  " of ", source_,
                                  ": the file is truncated; re-fetch it");
  }

  arrow::Status TrailingGarbage(int64_t offset) const {
    return arrow::Status::Invalid(
        "unexpected data at byte ", offset, " of ", source_, " after gzip member ",
        members_.load(std::memory_order_relaxed),
        ": it is not the start of another gzip member (trailing garbage); the file is "
        "damaged; re-fetch it");
  }

  arrow::Status HeaderError(int rc) const {
    if (members_.load(std::memory_order_relaxed) == 0 && !StartsLikeGzip()) {
      return NotGzip();
    }
    switch (rc) {
      case ISAL_INVALID_WRAPPER:
        if (members_.load(std::memory_order_relaxed) > 0) {
          return TrailingGarbage(member_start_);
        }
        return NotGzip();
      case ISAL_UNSUPPORTED_METHOD:
        return arrow::Status::Invalid(
            "gzip member ", Member(), " at byte ", member_start_, " of ", source_,
            " uses a compression method other than deflate; the "
            "file is damaged or not a flat file");
      case ISAL_INCORRECT_CHECKSUM:
        return arrow::Status::Invalid("bad gzip header checksum (FHCRC) in member ",
                                      Member(), " at byte ", member_start_, " of ",
                                      source_, ": the file is damaged; re-fetch it");
      default:
        return arrow::Status::Invalid("bad gzip header in member ", Member(), " at byte ",
                                      member_start_, " of ", source_, " (ISA-L code ", rc,
                                      "); the file is damaged; re-fetch it");
    }
  }

  arrow::Status BodyError(int rc) const {
    switch (rc) {
      case ISAL_INVALID_BLOCK:
      case ISAL_INVALID_SYMBOL:
      case ISAL_INVALID_LOOKBACK:
        return arrow::Status::Invalid("corrupt deflate data (", DeflateErrorText(rc),
                                      ") in gzip member ", Member(), " near byte ",
                                      Consumed(), " of ", source_,
                                      ": the file is damaged; re-fetch it");
      case ISAL_INCORRECT_CHECKSUM:
        return arrow::Status::Invalid(
            "gzip CRC-32/length check failed for member ", Member(), " ending at byte ",
            Consumed(), " of ", source_,
            ": the decompressed data does not match the trailer, so the file is corrupt; "
            "re-fetch it");
      default:
        return arrow::Status::Invalid("ISA-L inflate failed with code ", rc,
                                      " in gzip member ", Member(), " near byte ",
                                      Consumed(), " of ", source_);
    }
  }

  arrow::Status NoProgress() const {
    // Guards against spinning forever should ISA-L ever stall with input left.
    return arrow::Status::Invalid("gzip decoder made no progress at byte ", Consumed(),
                                  " of ", source_, " (phase ", static_cast<int>(phase_),
                                  ", ISA-L block state ",
                                  static_cast<int>(state_->block_state), ")");
  }

  arrow::Status RawError(const arrow::Status& st) const {
    return st.WithMessage(source_, ": reading gzip data at byte ", raw_bytes_, ": ",
                          st.message());
  }

  std::shared_ptr<arrow::io::InputStream> raw_;
  const std::string source_;
  const int64_t chunk_size_;
  arrow::MemoryPool* const pool_;
  const bool zero_copy_;

  std::unique_ptr<inflate_state> state_;  // ~90 KiB, so on the heap
  isal_gzip_header header_{};
  std::shared_ptr<arrow::Buffer> copy_buf_;  // input chunks of a non-zero-copy stream
  std::shared_ptr<arrow::Buffer> chunk_;     // input chunk of a zero-copy stream

  Phase phase_ = Phase::kHeader;
  bool raw_eof_ = false;
  int64_t raw_bytes_ = 0;     // read from the raw stream so far
  int64_t member_start_ = 0;  // compressed offset of the current member
  std::array<uint8_t, 4> first_bytes_{};
  size_t first_len_ = 0;
  arrow::Status error_;

  std::atomic<int64_t> compressed_{0};
  std::atomic<int64_t> uncompressed_{0};
  std::atomic<int64_t> members_{0};
};

// Output size to reserve for GunzipBuffer: the last member's ISIZE (exact for the usual
// single-member file), capped by what deflate could possibly produce.
int64_t OutputSizeHint(const arrow::Buffer& gz) {
  if (gz.size() < kMinMemberSize) return 0;
  const uint8_t* t = gz.data() + gz.size() - 4;
  const int64_t isize =
      int64_t{t[0]} | int64_t{t[1]} << 8 | int64_t{t[2]} << 16 | int64_t{t[3]} << 24;
  return std::min(isize, gz.size() * kMaxDeflateRatio);
}

}  // namespace

arrow::Status GzipStreamOptions::Validate() const {
  if (input_buffer_size < 1 || input_buffer_size > kMaxInputBufferSize) {
    return arrow::Status::Invalid("GzipStreamOptions.input_buffer_size must be in 1..",
                                  kMaxInputBufferSize, ", got ", input_buffer_size);
  }
  if (pool == nullptr) return arrow::Status::Invalid("GzipStreamOptions.pool is null");
  return arrow::Status::OK();
}

class GzipInputStream::Impl {
 public:
  Impl(std::shared_ptr<arrow::io::InputStream> raw, const GzipStreamOptions& options)
      : inflater(std::move(raw), options), pool(options.pool) {}

  arrow::Status CheckOpen() const {
    if (closed.load(std::memory_order_acquire)) {
      return arrow::Status::Invalid("gzip stream of ", inflater.source(), " is closed");
    }
    return arrow::Status::OK();
  }

  Inflater inflater;
  arrow::MemoryPool* const pool;
  std::atomic<bool> closed{false};
};

arrow::Result<std::shared_ptr<GzipInputStream>> GzipInputStream::Make(
    std::shared_ptr<arrow::io::InputStream> raw, GzipStreamOptions options) {
  if (raw == nullptr) {
    return arrow::Status::Invalid("GzipInputStream::Make: the raw stream of ",
                                  options.source_name, " is null");
  }
  ARROW_RETURN_NOT_OK(options.Validate());
  auto impl = std::make_unique<Impl>(std::move(raw), options);
  ARROW_RETURN_NOT_OK(impl->inflater.Init());
  return std::make_shared<GzipInputStream>(PrivateTag{}, std::move(impl));
}

GzipInputStream::GzipInputStream(PrivateTag, std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

GzipInputStream::~GzipInputStream() = default;

arrow::Result<int64_t> GzipInputStream::Read(int64_t nbytes, void* out) {
  ARROW_RETURN_NOT_OK(impl_->CheckOpen());
  if (nbytes < 0) {
    return arrow::Status::Invalid("gzip stream of ", impl_->inflater.source(),
                                  ": negative read size ", nbytes);
  }
  if (nbytes == 0) return 0;
  return impl_->inflater.Inflate(static_cast<uint8_t*>(out), nbytes);
}

arrow::Result<std::shared_ptr<arrow::Buffer>> GzipInputStream::Read(int64_t nbytes) {
  ARROW_RETURN_NOT_OK(impl_->CheckOpen());
  if (nbytes < 0) {
    return arrow::Status::Invalid("gzip stream of ", impl_->inflater.source(),
                                  ": negative read size ", nbytes);
  }
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::ResizableBuffer> buf,
                        arrow::AllocateResizableBuffer(nbytes, impl_->pool));
  ARROW_ASSIGN_OR_RAISE(int64_t got, Read(nbytes, buf->mutable_data()));
  if (got < nbytes) ARROW_RETURN_NOT_OK(buf->Resize(got, /*shrink_to_fit=*/true));
  return buf;
}

arrow::Status GzipInputStream::Close() {
  if (impl_->closed.exchange(true, std::memory_order_acq_rel)) return arrow::Status::OK();
  arrow::Status st = impl_->inflater.raw().Close();
  impl_->inflater.Release(arrow::Status::Invalid("gzip stream is closed"));
  return st;
}

arrow::Status GzipInputStream::Abort() {
  if (impl_->closed.exchange(true, std::memory_order_acq_rel)) return arrow::Status::OK();
  arrow::Status st = impl_->inflater.raw().Abort();
  impl_->inflater.Release(arrow::Status::Invalid("gzip stream is closed"));
  return st;
}

bool GzipInputStream::closed() const {
  return impl_->closed.load(std::memory_order_acquire);
}

arrow::Result<int64_t> GzipInputStream::Tell() const {
  return impl_->inflater.stats().uncompressed_bytes;
}

GzipStreamStats GzipInputStream::stats() const { return impl_->inflater.stats(); }

const std::string& GzipInputStream::source_name() const {
  return impl_->inflater.source();
}

arrow::Result<std::shared_ptr<arrow::Buffer>> GunzipBuffer(const arrow::Buffer& gz,
                                                           std::string_view source_name,
                                                           arrow::MemoryPool* pool) {
  GzipStreamOptions options;
  options.source_name = std::string(source_name);
  options.pool = pool;
  // One zero-copy chunk covers the whole input (up to the ISA-L length limit).
  options.input_buffer_size = std::clamp<int64_t>(gz.size(), 1, kMaxInputBufferSize);
  ARROW_RETURN_NOT_OK(options.Validate());
  // A non-owning view is enough: gz outlives this call.
  auto raw = std::make_shared<arrow::io::BufferReader>(
      std::make_shared<arrow::Buffer>(gz.data(), gz.size()));
  Inflater inflater(std::move(raw), options);
  ARROW_RETURN_NOT_OK(inflater.Init());

  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::ResizableBuffer> out,
                        arrow::AllocateResizableBuffer(OutputSizeHint(gz), pool));
  int64_t size = 0;
  while (true) {
    if (size == out->size()) {
      ARROW_ASSIGN_OR_RAISE(bool at_end, inflater.AtEnd());
      if (at_end) break;
      ARROW_RETURN_NOT_OK(
          out->Resize(std::max(out->size() * 2, kMinGrowth), /*shrink_to_fit=*/false));
    }
    ARROW_ASSIGN_OR_RAISE(
        int64_t got, inflater.Inflate(out->mutable_data() + size, out->size() - size));
    size += got;
    if (size < out->size()) break;  // Inflate stops short only at the end of the data
  }
  ARROW_RETURN_NOT_OK(out->Resize(size, /*shrink_to_fit=*/true));
  return out;
}

}  // namespace qlake::ingest
