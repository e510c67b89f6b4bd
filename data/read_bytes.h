// Whole-file reads through zlib, so gzip-compressed and raw files take the same path.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace asap::data {

// Returns the (decompressed) contents of `path`. gzopen/gzread read non-gzip files transparently,
// so .gz is detected by content, not by name. Throws asap::IoError naming the file when it
// cannot be opened or the gzip stream is corrupt or truncated.
std::vector<uint8_t> read_file_bytes(const std::string& path);

bool file_exists(const std::string& path);

// Last path component: error messages name the file the way the user sees it in a listing.
std::string base_name(const std::string& path);

}  // namespace asap::data
