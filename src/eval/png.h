// PNG images made without an image library (zlib's deflate and CRC), for pictures inlined in
// report pages as data: URIs. 8-bit RGB only.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace retort {

// rgb: width * height * 3 bytes, row by row from the top. Returns the PNG file's bytes.
std::string png_rgb(int64_t width, int64_t height, const std::vector<uint8_t>& rgb);
// "data:image/png;base64,..." of png_rgb.
std::string png_data_uri(int64_t width, int64_t height, const std::vector<uint8_t>& rgb);

}  // namespace retort
