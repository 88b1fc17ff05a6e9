// gzip of independently deflated segments, and a whole-file gunzip, on ISA-L.
//
// Layout of a file written by synth (RFC 1952 / RFC 1951):
//   1f 8b 08 00 | 00 00 00 00 (mtime 0) | 00 (xfl) | 03 (OS Unix)     10-byte header
//   segment 0 .. segment n-1   each: deflate blocks ending in an empty stored block
//                              (FULL_FLUSH), so it is byte-aligned and starts with an
//                              empty history: segments do not depend on each other
//   03 00                      an empty final block with fixed Huffman codes (BFINAL=1,
//                              BTYPE=01, end-of-block code 0000000)
//   crc32 (LE) | isize (LE)    trailer over the concatenated uncompressed segments
// The CRC of the whole is folded from the segments' CRCs (Crc32Combine), so no pass over
// the full uncompressed file is needed.

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>

#include "qlake/synth/synth_internal.h"

namespace qlake::synth::internal {

namespace {

constexpr std::array<unsigned char, 10> kGzipHeader = {0x1f, 0x8b, 0x08, 0x00, 0x00,
                                                       0x00, 0x00, 0x00, 0x00, 0x03};

// Multiplies the 32x32 GF(2) matrix `mat` (one column per word) by `vec`.
uint32_t Gf2Times(const std::array<uint32_t, 32>& mat, uint32_t vec) {
  uint32_t sum = 0;
  for (int i = 0; vec != 0; ++i, vec >>= 1) {
    if (vec & 1u) sum ^= mat[static_cast<size_t>(i)];
  }
  return sum;
}

std::array<uint32_t, 32> Gf2Square(const std::array<uint32_t, 32>& mat) {
  std::array<uint32_t, 32> sq{};
  for (size_t n = 0; n < 32; ++n) sq[n] = Gf2Times(mat, mat[n]);
  return sq;
}

uint32_t LevelBufferSize(int level) {
  switch (level) {
    case 1:
      return ISAL_DEF_LVL1_DEFAULT;
    case 2:
      return ISAL_DEF_LVL2_DEFAULT;
    case 3:
      return ISAL_DEF_LVL3_DEFAULT;
    default:
      return 0;
  }
}

// Largest input handed to one stateless call (avail_in is 32-bit); larger inputs are
// deflated piecewise, each piece flushed, which is still one valid segment.
constexpr size_t kMaxPiece = size_t{1} << 30;

}  // namespace

uint32_t Crc32(std::string_view data, uint32_t crc) {
  return crc32_gzip_refl(crc, reinterpret_cast<const unsigned char*>(data.data()),
                         data.size());
}

uint32_t Crc32Combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  if (len_b == 0) return crc_a;
  // Appending len_b zero bytes to A is a linear map on its CRC register; build the map
  // for one zero bit, then square it to get 2, 4, 8, ... bits and apply the powers that
  // make up 8 * len_b.
  std::array<uint32_t, 32> odd{};
  odd[0] = 0xedb88320u;  // the reflected gzip polynomial
  for (size_t n = 1; n < 32; ++n) odd[n] = 1u << (n - 1);
  std::array<uint32_t, 32> even = Gf2Square(odd);  // two zero bits
  odd = Gf2Square(even);                           // four zero bits
  do {
    even = Gf2Square(odd);  // first pass: one zero byte
    if (len_b & 1u) crc_a = Gf2Times(even, crc_a);
    len_b >>= 1;
    if (len_b == 0) break;
    odd = Gf2Square(even);
    if (len_b & 1u) crc_a = Gf2Times(odd, crc_a);
    len_b >>= 1;
  } while (len_b != 0);
  return crc_a ^ crc_b;
}

arrow::Result<DeflateSegment> DeflateFlushed(std::string_view raw, int level) {
  if (level < 0 || level > 3) {
    return arrow::Status::Invalid("gzip level ", level, " is not in 0..3 (ISA-L levels)");
  }
  thread_local std::vector<uint8_t> level_buf;
  const uint32_t lb_size = LevelBufferSize(level);
  if (level_buf.size() < lb_size) level_buf.resize(lb_size);

  // Compress into a per-thread buffer sized for the worst case, then keep an exact copy:
  // segments wait in memory until their file is complete, so slack would add up.
  thread_local std::vector<char> out;
  size_t used = 0;
  size_t pos = 0;
  do {
    const size_t piece = std::min(kMaxPiece, raw.size() - pos);
    // Worst case: stored blocks add 5 bytes per 64 KiB, plus headers and the flush.
    size_t cap = piece + piece / 64 + 4096;
    for (int attempt = 0;; ++attempt) {
      if (out.size() < used + cap) out.resize(used + cap);
      isal_zstream stream;
      isal_deflate_stateless_init(&stream);
      stream.level = static_cast<uint32_t>(level);
      stream.level_buf = lb_size ? level_buf.data() : nullptr;
      stream.level_buf_size = lb_size;
      stream.gzip_flag = IGZIP_DEFLATE;
      stream.flush = FULL_FLUSH;
      stream.end_of_stream = 0;
      stream.next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(raw.data() + pos));
      stream.avail_in = static_cast<uint32_t>(piece);
      stream.next_out = reinterpret_cast<uint8_t*>(out.data() + used);
      stream.avail_out = static_cast<uint32_t>(
          std::min<size_t>(cap, std::numeric_limits<uint32_t>::max()));
      const int ret = isal_deflate_stateless(&stream);
      if (ret == COMP_OK && stream.avail_in == 0) {
        used += stream.total_out;
        break;
      }
      if (ret != STATELESS_OVERFLOW || attempt > 4) {
        return arrow::Status::IOError("ISA-L deflate failed with code ", ret, " on ",
                                      piece, " bytes");
      }
      cap *= 2;
    }
    pos += piece;
  } while (pos < raw.size());
  DeflateSegment seg;
  seg.raw_bytes = raw.size();
  seg.crc = Crc32(raw);
  seg.data.assign(out.data(), used);
  return seg;
}

std::string_view GzipHeader() {
  return {reinterpret_cast<const char*>(kGzipHeader.data()), kGzipHeader.size()};
}

std::string GzipTrailer(uint32_t crc, uint64_t raw_bytes) {
  std::string t(10, '\0');
  t[0] = 0x03;  // empty final fixed-Huffman block, byte-aligned after the last flush
  t[1] = 0x00;
  const uint32_t isize = static_cast<uint32_t>(raw_bytes & 0xffffffffu);
  for (int i = 0; i < 4; ++i) {
    t[static_cast<size_t>(2 + i)] = static_cast<char>((crc >> (8 * i)) & 0xffu);
    t[static_cast<size_t>(6 + i)] = static_cast<char>((isize >> (8 * i)) & 0xffu);
  }
  return t;
}

arrow::Result<std::string> Gunzip(std::string_view gz) {
  std::string out;
  out.resize(std::max<size_t>(gz.size() * 4, 1 << 16));
  size_t produced = 0;
  inflate_state st;
  isal_inflate_init(&st);
  st.crc_flag = ISAL_GZIP;
  st.next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(gz.data()));
  st.avail_in = static_cast<uint32_t>(gz.size());
  if (gz.size() > std::numeric_limits<uint32_t>::max()) {
    return arrow::Status::Invalid("gunzip: input of ", gz.size(), " bytes is too large");
  }
  while (true) {
    if (produced == out.size()) out.resize(out.size() * 2);
    const size_t room =
        std::min<size_t>(out.size() - produced, std::numeric_limits<uint32_t>::max());
    st.next_out = reinterpret_cast<uint8_t*>(out.data() + produced);
    st.avail_out = static_cast<uint32_t>(room);
    const int ret = isal_inflate(&st);
    produced += room - st.avail_out;
    if (ret != ISAL_DECOMP_OK) {
      return arrow::Status::Invalid("gunzip: corrupt gzip data (ISA-L code ", ret,
                                    ") after ", produced, " output bytes");
    }
    if (st.block_state == ISAL_BLOCK_FINISH) {
      if (st.avail_in == 0) break;
      // Another member follows (RFC 1952 allows concatenation).
      uint8_t* next = st.next_in;
      uint32_t left = st.avail_in;
      isal_inflate_reset(&st);
      st.crc_flag = ISAL_GZIP;
      st.next_in = next;
      st.avail_in = left;
      continue;
    }
    if (st.avail_in == 0 && st.avail_out != 0) {
      return arrow::Status::Invalid("gunzip: truncated gzip data after ", produced,
                                    " output bytes");
    }
  }
  out.resize(produced);
  return out;
}

}  // namespace qlake::synth::internal
