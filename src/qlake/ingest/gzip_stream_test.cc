// Tests of GzipInputStream and GunzipBuffer against gzip data written by zlib (an
// independent encoder), over a zero-copy raw stream (BufferReader) and a copying one
// that may return short reads, with corruption and truncation at many offsets.

#include "qlake/ingest/gzip_stream.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <arrow/array.h>
#include <arrow/csv/api.h>
#include <arrow/io/memory.h>
#include <arrow/record_batch.h>
#include <arrow/util/thread_pool.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

namespace qlake::ingest {
namespace {

using ::testing::HasSubstr;

#define QL_CONCAT_INNER(a, b) a##b
#define QL_CONCAT(a, b) QL_CONCAT_INNER(a, b)
#define ASSERT_OK(expr)                                              \
  do {                                                               \
    const ::arrow::Status _st = (expr);                              \
    ASSERT_TRUE(_st.ok()) << #expr << " failed: " << _st.ToString(); \
  } while (false)
#define ASSERT_OK_AND_ASSIGN_IMPL(res, lhs, expr)                           \
  auto res = (expr);                                                        \
  ASSERT_TRUE(res.ok()) << #expr << " failed: " << res.status().ToString(); \
  lhs = std::move(res).ValueUnsafe()
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL(QL_CONCAT(_res_, __LINE__), lhs, expr)

constexpr std::string_view kSource =
    "s3://flatfiles/us_stocks_sip/trades_v1/2024/01/2024-01-02.csv.gz";

// ---------------------------------------------------------------------------------------
// Test data

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// Flat-file-like CSV: compresses about 4:1, like the real files.
std::string CsvText(size_t n, uint32_t seed) {
  static constexpr const char* kTickers[] = {"AAPL", "MSFT", "SPY",   "QQQ", "TSLA",
                                             "NVDA", "AMZN", "BRK.B", "F",   "GE"};
  std::mt19937 rng(seed);
  std::string s = "ticker,volume,open,close,high,low,window_start,transactions\n";
  while (s.size() < n) {
    const uint32_t px = 1000 + rng() % 50000;
    s += kTickers[rng() % 10];
    s += ',' + std::to_string(rng() % 100000) + ',' + std::to_string(px / 100) + '.' +
         std::to_string(10 + px % 90) + ',' + std::to_string(px / 100 + 1) + ".0" +
         std::to_string(rng() % 10) + ',' +
         std::to_string(1704205800000000000LL + (rng() % 1000) * 60000000000LL) + ',' +
         std::to_string(rng() % 500) + '\n';
  }
  s.resize(n);
  return s;
}

struct GzipHeaderFields {
  std::string extra;    // FEXTRA when non-empty
  std::string name;     // FNAME when non-empty
  std::string comment;  // FCOMMENT when non-empty
  bool hcrc = false;    // FHCRC
};

// One gzip member written by zlib.
std::string ZlibGzip(std::string_view data, int level = 6,
                     const GzipHeaderFields* fields = nullptr) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  gz_header header{};
  std::string extra, name, comment;
  if (fields != nullptr) {
    extra = fields->extra;
    name = fields->name;
    comment = fields->comment;
    header.extra = extra.empty() ? Z_NULL : reinterpret_cast<Bytef*>(extra.data());
    header.extra_len = static_cast<uInt>(extra.size());
    header.name = name.empty() ? Z_NULL : reinterpret_cast<Bytef*>(name.data());
    header.comment = comment.empty() ? Z_NULL : reinterpret_cast<Bytef*>(comment.data());
    header.hcrc = fields->hcrc ? 1 : 0;
    EXPECT_EQ(deflateSetHeader(&zs, &header), Z_OK);
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())) + 1024, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// ---------------------------------------------------------------------------------------
// Raw streams

// A non-zero-copy stream over a string that returns at most max_read bytes per Read and
// can fail once `fail_at` bytes have been served.
class CopyingStream : public arrow::io::InputStream {
 public:
  explicit CopyingStream(std::string data, int64_t max_read = -1, int64_t fail_at = -1)
      : data_(std::move(data)), max_read_(max_read), fail_at_(fail_at) {}

  arrow::Result<int64_t> Read(int64_t nbytes, void* out) override {
    if (closed_) return arrow::Status::Invalid("closed");
    if (fail_at_ >= 0 && pos_ >= fail_at_) {
      return arrow::Status::IOError("connection reset by peer");
    }
    int64_t n = std::min<int64_t>(nbytes, static_cast<int64_t>(data_.size()) - pos_);
    if (max_read_ > 0) n = std::min(n, max_read_);
    if (fail_at_ >= 0) n = std::min(n, fail_at_ - pos_);
    std::memcpy(out, data_.data() + pos_, static_cast<size_t>(n));
    pos_ += n;
    ++reads_;
    return n;
  }
  arrow::Result<std::shared_ptr<arrow::Buffer>> Read(int64_t nbytes) override {
    ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::ResizableBuffer> buf,
                          arrow::AllocateResizableBuffer(nbytes));
    ARROW_ASSIGN_OR_RAISE(int64_t n, Read(nbytes, buf->mutable_data()));
    ARROW_RETURN_NOT_OK(buf->Resize(n));
    return buf;
  }
  arrow::Status Close() override {
    closed_ = true;
    return arrow::Status::OK();
  }
  arrow::Result<int64_t> Tell() const override { return pos_; }
  bool closed() const override { return closed_; }
  int64_t reads() const { return reads_; }

 private:
  std::string data_;
  int64_t max_read_;
  int64_t fail_at_;
  int64_t pos_ = 0;
  int64_t reads_ = 0;
  bool closed_ = false;
};

enum class RawKind { kZeroCopy, kCopying, kCopyingShortReads };

std::string RawKindName(const ::testing::TestParamInfo<RawKind>& info) {
  switch (info.param) {
    case RawKind::kZeroCopy:
      return "ZeroCopy";
    case RawKind::kCopying:
      return "Copying";
    case RawKind::kCopyingShortReads:
      return "CopyingShortReads";
  }
  return "?";
}

std::shared_ptr<arrow::io::InputStream> MakeRaw(RawKind kind, std::string gz) {
  switch (kind) {
    case RawKind::kZeroCopy:
      return std::make_shared<arrow::io::BufferReader>(arrow::Buffer::FromString(gz));
    case RawKind::kCopying:
      return std::make_shared<CopyingStream>(std::move(gz));
    case RawKind::kCopyingShortReads:
      return std::make_shared<CopyingStream>(std::move(gz), /*max_read=*/13);
  }
  return nullptr;
}

GzipStreamOptions Opts(int64_t input_buffer_size = int64_t{1} << 20) {
  GzipStreamOptions o;
  o.source_name = std::string(kSource);
  o.input_buffer_size = input_buffer_size;
  return o;
}

// Reads the whole stream `read_size` bytes at a time (alternating Read overloads).
arrow::Result<std::string> ReadAll(GzipInputStream& in, int64_t read_size) {
  std::string out;
  std::vector<char> buf(static_cast<size_t>(read_size));
  for (int i = 0;; ++i) {
    int64_t n = 0;
    if (i % 2 == 0) {
      ARROW_ASSIGN_OR_RAISE(n, in.Read(read_size, buf.data()));
      out.append(buf.data(), static_cast<size_t>(n));
    } else {
      ARROW_ASSIGN_OR_RAISE(auto b, in.Read(read_size));
      n = b->size();
      out.append(reinterpret_cast<const char*>(b->data()), static_cast<size_t>(n));
    }
    ARROW_ASSIGN_OR_RAISE(int64_t tell, in.Tell());
    if (tell != static_cast<int64_t>(out.size())) {
      return arrow::Status::Invalid("Tell() = ", tell, " after ", out.size(), " bytes");
    }
    if (n == 0) return out;
    // A short read means end of data: the next read must return nothing.
    if (n < read_size) {
      ARROW_ASSIGN_OR_RAISE(int64_t again, in.Read(read_size, buf.data()));
      if (again != 0) return arrow::Status::Invalid("data after a short read");
      return out;
    }
  }
}

arrow::Result<std::string> Gunzip(RawKind kind, const std::string& gz, int64_t read_size,
                                  GzipStreamOptions opts = Opts()) {
  ARROW_ASSIGN_OR_RAISE(auto in, GzipInputStream::Make(MakeRaw(kind, gz), opts));
  return ReadAll(*in, read_size);
}

// ---------------------------------------------------------------------------------------
// Round trips, parameterized over the kind of raw stream

class GzipStreamTest : public ::testing::TestWithParam<RawKind> {};

INSTANTIATE_TEST_SUITE_P(Raw, GzipStreamTest,
                         ::testing::Values(RawKind::kZeroCopy, RawKind::kCopying,
                                           RawKind::kCopyingShortReads),
                         RawKindName);

TEST_P(GzipStreamTest, RoundTripsSmallSizes) {
  for (size_t size : {0, 1, 2, 3, 100, 4095, 4096, 4097, 65535, 65536, 65537}) {
    const std::string text = CsvText(size, static_cast<uint32_t>(size));
    const std::string gz = ZlibGzip(text);
    for (int64_t read_size : {int64_t{1} << 20, int64_t{4096}, int64_t{1000}}) {
      ASSERT_OK_AND_ASSIGN(std::string out, Gunzip(GetParam(), gz, read_size));
      ASSERT_EQ(out, text) << "size " << size << " read " << read_size;
    }
  }
}

struct BigCase {
  std::string data;
  std::vector<std::pair<int, std::string>> gz_by_level;
};

// Several MiB of text and of incompressible bytes, compressed once for all raw kinds.
const std::vector<BigCase>& BigCases() {
  static const std::vector<BigCase> cases = [] {
    std::vector<BigCase> v(2);
    v[0].data = CsvText(5 << 20, 1);
    v[1].data = RandomBytes(3 << 20, 2);
    for (int level : {0, 1, 6, 9})
      v[0].gz_by_level.emplace_back(level, ZlibGzip(v[0].data, level));
    // Level 0 gives stored blocks; 6 mostly stored ones too, as deflate gives up on
    // noise.
    for (int level : {0, 6})
      v[1].gz_by_level.emplace_back(level, ZlibGzip(v[1].data, level));
    return v;
  }();
  return cases;
}

TEST_P(GzipStreamTest, RoundTripsMegabytesOfTextAndRandomBytes) {
  for (const BigCase& c : BigCases()) {
    for (const auto& [level, gz] : c.gz_by_level) {
      ASSERT_OK_AND_ASSIGN(std::string out, Gunzip(GetParam(), gz, 1 << 20));
      ASSERT_TRUE(out == c.data) << "level " << level << ", size " << c.data.size();
    }
  }
}

TEST_P(GzipStreamTest, InputBufferBoundariesDoNotMatter) {
  const std::string text = CsvText(200000, 3);
  const std::string gz = ZlibGzip(text);
  const int64_t g = static_cast<int64_t>(gz.size());
  for (int64_t buffer :
       {int64_t{1}, int64_t{2}, int64_t{7}, int64_t{8}, int64_t{9}, int64_t{10},
        int64_t{11}, int64_t{4096}, g - 9, g - 8, g - 1, g, g + 1}) {
    ASSERT_OK_AND_ASSIGN(std::string out, Gunzip(GetParam(), gz, 65536, Opts(buffer)));
    ASSERT_TRUE(out == text) << "input buffer " << buffer;
  }
}

TEST_P(GzipStreamTest, ReadsOfExactlyTheOutputSize) {
  const std::string text = CsvText(100000, 4);
  const std::string gz = ZlibGzip(text);
  ASSERT_OK_AND_ASSIGN(auto in, GzipInputStream::Make(MakeRaw(GetParam(), gz), Opts()));
  std::string out(text.size(), '\0');
  ASSERT_OK_AND_ASSIGN(int64_t n, in->Read(static_cast<int64_t>(out.size()), out.data()));
  EXPECT_EQ(n, static_cast<int64_t>(text.size()));
  EXPECT_TRUE(out == text);
  char extra = 0;
  ASSERT_OK_AND_ASSIGN(n, in->Read(1, &extra));
  EXPECT_EQ(n, 0);
  ASSERT_OK_AND_ASSIGN(n, in->Read(1, &extra));
  EXPECT_EQ(n, 0);
}

TEST_P(GzipStreamTest, OneByteReadsMatchLargeReads) {
  const std::string text = CsvText(300000, 5);
  const std::string gz = ZlibGzip(text);
  ASSERT_OK_AND_ASSIGN(std::string large, Gunzip(GetParam(), gz, 1 << 20));
  ASSERT_OK_AND_ASSIGN(std::string small, Gunzip(GetParam(), gz, 1));
  ASSERT_OK_AND_ASSIGN(std::string tiny_input, Gunzip(GetParam(), gz, 1, Opts(1)));
  EXPECT_TRUE(large == text);
  EXPECT_TRUE(small == text);
  EXPECT_TRUE(tiny_input == text);
}

TEST_P(GzipStreamTest, ConcatenatedMembersAreOneStream) {
  const std::string a = CsvText(70000, 6), b = "", c = CsvText(1234, 7);
  const std::string gz = ZlibGzip(a) + ZlibGzip(b, 1) + ZlibGzip(c, 9);
  const int64_t first = static_cast<int64_t>(ZlibGzip(a).size());
  for (int64_t buffer :
       {int64_t{1}, int64_t{7}, first - 1, first, first + 1, int64_t{1} << 20}) {
    for (int64_t read_size : {int64_t{1} << 20, int64_t{70000}, int64_t{333}}) {
      ASSERT_OK_AND_ASSIGN(auto in,
                           GzipInputStream::Make(MakeRaw(GetParam(), gz), Opts(buffer)));
      ASSERT_OK_AND_ASSIGN(std::string out, ReadAll(*in, read_size));
      ASSERT_TRUE(out == a + b + c) << "buffer " << buffer << " read " << read_size;
      const GzipStreamStats s = in->stats();
      EXPECT_EQ(s.members, 3);
      EXPECT_EQ(s.compressed_bytes, static_cast<int64_t>(gz.size()));
      EXPECT_EQ(s.uncompressed_bytes, static_cast<int64_t>(out.size()));
    }
  }
}

// The optional header fields exercise ISA-L's resumable header parser; split across
// input chunks of every small size they must still parse, FHCRC included.
TEST_P(GzipStreamTest, OptionalHeaderFieldsSplitAcrossChunks) {
  GzipHeaderFields fields;
  fields.extra = std::string("QL\x04\x00", 4) + "abcd";  // one subfield, 4 bytes
  fields.name = "2024-01-02.csv";
  fields.comment = "flat file";
  fields.hcrc = true;
  const std::string text = CsvText(5000, 8);
  const std::string member = ZlibGzip(text, 6, &fields);
  ASSERT_EQ(static_cast<unsigned char>(member[3]), 0x1e);  // FHCRC|FEXTRA|FNAME|FCOMMENT
  const std::string gz = member + member;
  for (int64_t buffer = 1; buffer <= 48; ++buffer) {
    ASSERT_OK_AND_ASSIGN(std::string out, Gunzip(GetParam(), gz, 4096, Opts(buffer)));
    ASSERT_TRUE(out == text + text) << "input buffer " << buffer;
  }
}

TEST_P(GzipStreamTest, TellAndStatsCountBytesProduced) {
  const std::string text = CsvText(50000, 9);
  const std::string gz = ZlibGzip(text);
  ASSERT_OK_AND_ASSIGN(auto in,
                       GzipInputStream::Make(MakeRaw(GetParam(), gz), Opts(1024)));
  ASSERT_OK_AND_ASSIGN(int64_t pos, in->Tell());
  EXPECT_EQ(pos, 0);
  std::vector<char> buf(777);
  int64_t total = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(int64_t n, in->Read(777, buf.data()));
    total += n;
    ASSERT_OK_AND_ASSIGN(pos, in->Tell());
    ASSERT_EQ(pos, total);
    const GzipStreamStats s = in->stats();
    ASSERT_EQ(s.uncompressed_bytes, total);
    ASSERT_LE(s.compressed_bytes, static_cast<int64_t>(gz.size()));
    if (n == 0) break;
  }
  EXPECT_EQ(total, static_cast<int64_t>(text.size()));
  EXPECT_EQ(in->stats().compressed_bytes, static_cast<int64_t>(gz.size()));
  EXPECT_EQ(in->stats().members, 1);
}

// ---------------------------------------------------------------------------------------
// Damaged input

TEST_P(GzipStreamTest, TruncationAtEveryOffsetIsAnError) {
  const std::string text = CsvText(40000, 10);
  const std::string gz = ZlibGzip(text);
  ASSERT_GT(gz.size(), 5000u);
  for (size_t cut = 0; cut < gz.size(); ++cut) {
    auto out = Gunzip(GetParam(), gz.substr(0, cut), 4096, Opts(1000));
    ASSERT_FALSE(out.ok()) << "truncated at " << cut << " of " << gz.size()
                           << " decoded without error";
    const arrow::Status& st = out.status();
    ASSERT_TRUE(st.IsIOError()) << st.ToString();
    ASSERT_THAT(st.message(), HasSubstr(std::string(kSource))) << cut;
    if (cut > 0) {
      ASSERT_THAT(st.message(), HasSubstr("unexpected end of gzip data at byte " +
                                          std::to_string(cut) + " of "));
      ASSERT_THAT(st.message(), HasSubstr("the file is truncated; re-fetch it"));
    } else {
      ASSERT_THAT(st.message(), HasSubstr("is empty"));
    }
  }
}

TEST_P(GzipStreamTest, TruncationInsideALaterMemberIsAnError) {
  const std::string first = ZlibGzip(CsvText(3000, 11));
  const std::string second = ZlibGzip(CsvText(3000, 12));
  const std::string gz = first + second;
  // Cutting exactly at the member boundary leaves a valid one-member file.
  for (size_t cut = first.size() + 1; cut < gz.size(); ++cut) {
    auto out = Gunzip(GetParam(), gz.substr(0, cut), 4096, Opts(512));
    ASSERT_FALSE(out.ok()) << "cut at " << cut;
    ASSERT_TRUE(out.status().IsIOError()) << out.status().ToString();
    ASSERT_THAT(out.status().message(), HasSubstr("truncated"));
  }
}

TEST_P(GzipStreamTest, EveryFlippedByteAfterTheHeaderIsAnError) {
  const std::string text = CsvText(20000, 13);
  const std::string gz = ZlibGzip(text);
  constexpr size_t kHeader = 10;  // mtime/xfl/os are not covered by any checksum
  for (size_t pos = kHeader; pos < gz.size(); ++pos) {
    for (unsigned char mask : {0xff, 0x01, 0x80}) {
      // The high bits of the last deflate byte are padding after the end-of-block code,
      // covered by no check (zlib and gzip(1) ignore them too). Bit 0 always carries
      // data, so 0x01 and 0xff still must be caught there.
      if (pos == gz.size() - 9 && mask == 0x80) continue;
      std::string bad = gz;
      bad[pos] = static_cast<char>(bad[pos] ^ mask);
      auto out = Gunzip(GetParam(), bad, 8192, Opts(4096));
      ASSERT_FALSE(out.ok()) << "byte " << pos << " ^ " << int{mask} << " of "
                             << gz.size() << " went unnoticed";
      ASSERT_THAT(out.status().message(), HasSubstr(std::string(kSource)));
    }
  }
}

TEST_P(GzipStreamTest, BadTrailerIsReportedAsChecksumFailure) {
  const std::string text = CsvText(10000, 14);
  const std::string gz = ZlibGzip(text);
  for (size_t pos = gz.size() - 8; pos < gz.size(); ++pos) {
    std::string bad = gz;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x10);
    auto out = Gunzip(GetParam(), bad, 4096);
    ASSERT_FALSE(out.ok()) << pos;
    EXPECT_TRUE(out.status().IsInvalid()) << out.status().ToString();
    EXPECT_THAT(out.status().message(),
                HasSubstr("gzip CRC-32/length check failed for member 1 ending at byte " +
                          std::to_string(gz.size())));
    EXPECT_THAT(out.status().message(), HasSubstr(std::string(kSource)));
  }
}

TEST_P(GzipStreamTest, CorruptDeflateDataNamesTheOffset) {
  std::string gz = ZlibGzip(RandomBytes(1000, 15), 0);  // stored blocks
  // Stored block header at byte 10: BFINAL=1, BTYPE=00, then LEN/NLEN. Break NLEN.
  gz[14] = static_cast<char>(gz[14] ^ 0x01);
  auto out = Gunzip(GetParam(), gz, 4096);
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(out.status().IsInvalid()) << out.status().ToString();
  EXPECT_THAT(out.status().message(), HasSubstr("corrupt deflate data"));
  EXPECT_THAT(out.status().message(), HasSubstr("in gzip member 1 near byte "));
  EXPECT_THAT(out.status().message(), HasSubstr("re-fetch it"));
}

TEST_P(GzipStreamTest, NotGzipIsAClearError) {
  auto text = Gunzip(GetParam(), "ticker,volume\nAAPL,100\nMSFT,200\n", 4096);
  ASSERT_FALSE(text.ok());
  EXPECT_TRUE(text.status().IsInvalid());
  EXPECT_THAT(text.status().message(),
              HasSubstr(std::string(kSource) + " is not gzip data: it starts with bytes "
                                               "74 69 63 6b, not the gzip magic 1f 8b"));
  EXPECT_THAT(text.status().message(), HasSubstr("already decompressed"));

  auto zip = Gunzip(GetParam(),
                    std::string("PK\x03\x04\x14\x00\x00\x00\x08\x00xxxxxxxx", 18), 4096);
  ASSERT_FALSE(zip.ok());
  EXPECT_THAT(zip.status().message(), HasSubstr("50 4b 03 04, not the gzip magic"));

  auto tiny = Gunzip(GetParam(), "x", 4096);  // too short for a header, still not gzip
  ASSERT_FALSE(tiny.ok());
  EXPECT_THAT(tiny.status().message(), HasSubstr("is not gzip data"));

  std::string zlib_not_gzip = ZlibGzip("abc");
  zlib_not_gzip[2] = 7;  // compression method other than deflate
  auto method = Gunzip(GetParam(), zlib_not_gzip, 4096);
  ASSERT_FALSE(method.ok());
  EXPECT_THAT(method.status().message(),
              HasSubstr("compression method other than deflate"));

  auto empty = Gunzip(GetParam(), "", 4096);
  ASSERT_FALSE(empty.ok());
  EXPECT_TRUE(empty.status().IsIOError());
  EXPECT_THAT(empty.status().message(), HasSubstr("is empty (0 bytes)"));
}

TEST_P(GzipStreamTest, TrailingGarbageIsAnError) {
  const std::string text = CsvText(3000, 16);
  const std::string member = ZlibGzip(text);
  for (const std::string& tail :
       {std::string(1, '\0'), std::string(512, '\0'), std::string("garbage\n")}) {
    auto out = Gunzip(GetParam(), member + tail, 4096);
    ASSERT_FALSE(out.ok());
    EXPECT_TRUE(out.status().IsInvalid()) << out.status().ToString();
    EXPECT_THAT(out.status().message(),
                HasSubstr("unexpected data at byte " + std::to_string(member.size()) +
                          " of " + std::string(kSource) + " after gzip member 1"));
  }
}

TEST_P(GzipStreamTest, ErrorsAreSticky) {
  std::string gz = ZlibGzip(CsvText(100000, 17));
  gz[gz.size() / 2] = static_cast<char>(gz[gz.size() / 2] ^ 0xff);
  ASSERT_OK_AND_ASSIGN(auto in,
                       GzipInputStream::Make(MakeRaw(GetParam(), gz), Opts(1024)));
  std::vector<char> buf(4096);
  arrow::Status first;
  while (true) {
    auto r = in->Read(4096, buf.data());
    if (!r.ok()) {
      first = r.status();
      break;
    }
    ASSERT_NE(*r, 0) << "corrupt data read to the end without error";
  }
  auto again = in->Read(4096, buf.data());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().ToString(), first.ToString());
}

// ---------------------------------------------------------------------------------------
// Stream contract

TEST(GzipInputStreamTest, RawStreamErrorsArePassedOnWithTheSource) {
  const std::string gz = ZlibGzip(CsvText(100000, 18));
  auto raw = std::make_shared<CopyingStream>(gz, -1, /*fail_at=*/5000);
  ASSERT_OK_AND_ASSIGN(auto in, GzipInputStream::Make(raw, Opts(1024)));
  auto out = ReadAll(*in, 4096);
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(out.status().IsIOError());
  EXPECT_THAT(out.status().message(),
              HasSubstr(std::string(kSource) +
                        ": reading gzip data at byte 5000: connection reset by peer"));
}

TEST(GzipInputStreamTest, ReadsTheRawStreamInBigChunks) {
  const std::string gz = ZlibGzip(RandomBytes(3 << 20, 19));
  auto raw = std::make_shared<CopyingStream>(gz);
  ASSERT_OK_AND_ASSIGN(auto in, GzipInputStream::Make(raw, Opts(1 << 20)));
  ASSERT_OK_AND_ASSIGN(std::string out, ReadAll(*in, 4096));
  // ceil(size / 1 MiB) reads with data plus the one that sees the end.
  EXPECT_EQ(raw->reads(), static_cast<int64_t>((gz.size() + (1 << 20) - 1) >> 20) + 1);
}

TEST(GzipInputStreamTest, CloseClosesTheRawStreamAndStopsReads) {
  const std::string gz = ZlibGzip(CsvText(10000, 20));
  auto raw = std::make_shared<CopyingStream>(gz);
  ASSERT_OK_AND_ASSIGN(auto in, GzipInputStream::Make(raw, Opts()));
  char c = 0;
  ASSERT_OK_AND_ASSIGN(int64_t n, in->Read(1, &c));
  EXPECT_EQ(n, 1);
  EXPECT_FALSE(in->closed());
  ASSERT_OK(in->Close());
  EXPECT_TRUE(in->closed());
  EXPECT_TRUE(raw->closed());
  ASSERT_OK(in->Close());  // idempotent
  auto r = in->Read(1, &c);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("is closed"));
  EXPECT_FALSE(in->Read(1).ok());
  ASSERT_OK_AND_ASSIGN(int64_t pos, in->Tell());
  EXPECT_EQ(pos, 1);

  auto raw2 = std::make_shared<CopyingStream>(gz);
  ASSERT_OK_AND_ASSIGN(auto in2, GzipInputStream::Make(raw2, Opts()));
  ASSERT_OK(in2->Abort());
  EXPECT_TRUE(in2->closed());
  EXPECT_TRUE(raw2->closed());
}

TEST(GzipInputStreamTest, InvalidArgumentsAreRejected) {
  EXPECT_FALSE(GzipInputStream::Make(nullptr, Opts()).ok());
  auto raw = std::make_shared<arrow::io::BufferReader>(arrow::Buffer::FromString("x"));
  EXPECT_FALSE(GzipInputStream::Make(raw, Opts(0)).ok());
  EXPECT_FALSE(GzipInputStream::Make(raw, Opts((int64_t{1} << 30) + 1)).ok());
  GzipStreamOptions no_pool = Opts();
  no_pool.pool = nullptr;
  EXPECT_FALSE(GzipInputStream::Make(raw, no_pool).ok());
  EXPECT_TRUE(GzipStreamOptions::Defaults().Validate().ok());

  ASSERT_OK_AND_ASSIGN(auto in, GzipInputStream::Make(raw, Opts()));
  char c = 0;
  EXPECT_FALSE(in->Read(-1, &c).ok());
  ASSERT_OK_AND_ASSIGN(int64_t n, in->Read(0, &c));  // zero-length reads read nothing
  EXPECT_EQ(n, 0);
  EXPECT_EQ(in->source_name(), kSource);
}

TEST(GzipInputStreamTest, UnnamedSourceHasAPlaceholderName) {
  auto raw = std::make_shared<arrow::io::BufferReader>(arrow::Buffer::FromString("nope"));
  ASSERT_OK_AND_ASSIGN(auto in, GzipInputStream::Make(raw));
  char buf[16];
  auto r = in->Read(16, buf);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("<gzip stream> is not gzip data"));
}

// The point of the class: arrow::csv::StreamingReader on top of it, reading in the
// background with small blocks so that many reads cross chunk and member boundaries.
TEST(GzipInputStreamTest, FeedsArrowCsvStreamingReader) {
  std::string csv = "ticker,volume,window_start\n";
  int64_t volume_sum = 0;
  constexpr int kRows = 30000;
  for (int i = 0; i < kRows; ++i) {
    const int64_t volume = (i * 7919) % 100003;
    volume_sum += volume;
    csv += (i % 3 == 0 ? "AAPL," : "MSFT,") + std::to_string(volume) + ',' +
           std::to_string(1704205800000000000LL + int64_t{i} * 60000000000LL) + '\n';
  }
  // Two members, split mid-row: concatenation must be invisible to the parser.
  const size_t half = csv.size() / 2;
  const std::string gz = ZlibGzip(csv.substr(0, half)) + ZlibGzip(csv.substr(half));

  auto raw = std::make_shared<CopyingStream>(gz, /*max_read=*/10000);
  ASSERT_OK_AND_ASSIGN(auto in, GzipInputStream::Make(raw, Opts(16 << 10)));
  auto read_options = arrow::csv::ReadOptions::Defaults();
  read_options.block_size = 32 << 10;
  auto convert_options = arrow::csv::ConvertOptions::Defaults();
  convert_options.column_types = {{"ticker", arrow::utf8()},
                                  {"volume", arrow::int64()},
                                  {"window_start", arrow::int64()}};
  ASSERT_OK_AND_ASSIGN(auto reader,
                       arrow::csv::StreamingReader::Make(
                           arrow::io::default_io_context(), in, read_options,
                           arrow::csv::ParseOptions::Defaults(), convert_options));
  int64_t rows = 0, sum = 0;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    ASSERT_OK(reader->ReadNext(&batch));
    if (batch == nullptr) break;
    rows += batch->num_rows();
    const auto& volume =
        static_cast<const arrow::Int64Array&>(*batch->GetColumnByName("volume"));
    for (int64_t i = 0; i < volume.length(); ++i) sum += volume.Value(i);
  }
  EXPECT_EQ(rows, kRows);
  EXPECT_EQ(sum, volume_sum);
  EXPECT_EQ(in->stats().members, 2);
  EXPECT_EQ(in->stats().compressed_bytes, static_cast<int64_t>(gz.size()));
}

TEST(GzipInputStreamTest, CsvReaderSurfacesTruncation) {
  std::string csv = "a,b\n";
  for (int i = 0; i < 20000; ++i)
    csv += std::to_string(i) + ',' + std::to_string(i * 3) + '\n';
  const std::string gz = ZlibGzip(csv);
  auto raw = std::make_shared<CopyingStream>(gz.substr(0, gz.size() - 100));
  ASSERT_OK_AND_ASSIGN(auto in, GzipInputStream::Make(raw, Opts(4096)));
  auto read_options = arrow::csv::ReadOptions::Defaults();
  read_options.block_size = 16 << 10;
  auto reader_result = arrow::csv::StreamingReader::Make(
      arrow::io::default_io_context(), in, read_options,
      arrow::csv::ParseOptions::Defaults(), arrow::csv::ConvertOptions::Defaults());
  arrow::Status st = reader_result.status();
  if (st.ok()) {
    auto reader = *reader_result;
    while (st.ok()) {
      std::shared_ptr<arrow::RecordBatch> batch;
      st = reader->ReadNext(&batch);
      if (st.ok() && batch == nullptr) break;
    }
  }
  ASSERT_FALSE(st.ok()) << "a truncated file parsed cleanly";
  EXPECT_THAT(st.message(), HasSubstr("the file is truncated; re-fetch it"));
  EXPECT_THAT(st.message(), HasSubstr(std::string(kSource)));
}

// ---------------------------------------------------------------------------------------
// GunzipBuffer

TEST(GunzipBufferTest, RoundTrips) {
  for (size_t size : {0, 1, 65535, 65536, 1000000}) {
    const std::string text = CsvText(size, 21);
    const std::string gz = ZlibGzip(text);
    ASSERT_OK_AND_ASSIGN(auto out, GunzipBuffer(*arrow::Buffer::FromString(gz), kSource));
    ASSERT_EQ(out->ToString(), text) << size;
    EXPECT_EQ(out->size(), static_cast<int64_t>(text.size()));
  }
}

TEST(GunzipBufferTest, ConcatenatedMembersGrowTheOutput) {
  // The size hint is the last member's ISIZE, far too small here.
  const std::string a = CsvText(500000, 22), b = CsvText(10, 23);
  const std::string gz = ZlibGzip(a) + ZlibGzip(b);
  ASSERT_OK_AND_ASSIGN(auto out, GunzipBuffer(*arrow::Buffer::FromString(gz), kSource));
  EXPECT_TRUE(out->ToString() == a + b);
}

TEST(GunzipBufferTest, LyingIsizeIsHarmless) {
  const std::string text = CsvText(100000, 24);
  std::string gz = ZlibGzip(text);
  gz[gz.size() - 1] = static_cast<char>(0x7f);  // ISIZE ~ 2 GiB: capped, then rejected
  auto out = GunzipBuffer(*arrow::Buffer::FromString(gz), kSource);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("CRC-32/length check failed"));
}

TEST(GunzipBufferTest, ReportsTheSameErrors) {
  const std::string gz = ZlibGzip(CsvText(50000, 25));
  for (size_t cut : {size_t{0}, size_t{5}, gz.size() / 2, gz.size() - 1}) {
    auto out = GunzipBuffer(*arrow::Buffer::FromString(gz.substr(0, cut)), kSource);
    ASSERT_FALSE(out.ok()) << cut;
    EXPECT_TRUE(out.status().IsIOError());
    EXPECT_THAT(out.status().message(), HasSubstr(std::string(kSource)));
  }
  auto text = GunzipBuffer(*arrow::Buffer::FromString("a,b\n1,2\n"), "day.csv.gz");
  ASSERT_FALSE(text.ok());
  EXPECT_THAT(text.status().message(), HasSubstr("day.csv.gz is not gzip data"));
}

}  // namespace
}  // namespace qlake::ingest
