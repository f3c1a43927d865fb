// PNG writer: signature, IHDR, one IDAT (zlib stream of filter-0 rows), IEND.
#include "png.h"

#include <zlib.h>

#include "retort/base64.h"
#include "retort/error.h"

namespace retort {

namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

// length, type, data, CRC-32 of type + data
void put_chunk(std::string& out, const char* type, const std::string& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  std::string body = std::string(type, 4) + data;
  out += body;
  put_u32(out, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size())));
}

}  // namespace

std::string png_rgb(int64_t width, int64_t height, const std::vector<uint8_t>& rgb) {
  if (width < 1 || height < 1 || static_cast<int64_t>(rgb.size()) != width * height * 3)
    fail("png: ", rgb.size(), " bytes are no ", width, "x", height, " RGB image");
  std::string raw;  // each row: filter type 0 (none), then its pixels
  for (int64_t y = 0; y < height; ++y) {
    raw += '\0';
    raw.append(reinterpret_cast<const char*>(rgb.data() + y * width * 3), width * 3);
  }
  uLongf size = compressBound(raw.size());
  std::string packed(size, '\0');
  if (compress2(reinterpret_cast<Bytef*>(packed.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
                raw.size(), Z_BEST_COMPRESSION) != Z_OK)
    fail("png: zlib could not compress a ", width, "x", height, " image");
  packed.resize(size);

  std::string header;
  put_u32(header, static_cast<uint32_t>(width));
  put_u32(header, static_cast<uint32_t>(height));
  header += std::string("\x08\x02\x00\x00\x00", 5);  // 8 bits, RGB, deflate, filter 0, no interlace
  std::string png = "\x89PNG\r\n\x1a\n";
  put_chunk(png, "IHDR", header);
  put_chunk(png, "IDAT", packed);
  put_chunk(png, "IEND", "");
  return png;
}

std::string png_data_uri(int64_t width, int64_t height, const std::vector<uint8_t>& rgb) {
  return "data:image/png;base64," + base64_encode(png_rgb(width, height, rgb));
}

}  // namespace retort
