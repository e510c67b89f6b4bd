// Typed exceptions for library code. Only main() turns them into exit codes.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace asap {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct ShapeError : Error { using Error::Error; };     // incompatible tensor shapes / arguments
struct IoError : Error { using Error::Error; };        // files: missing, malformed, unwritable
struct ConfigError : Error { using Error::Error; };    // YAML config problems (key + line in message)
struct DeviceError : Error { using Error::Error; };    // CUDA/cuBLAS/cuDNN failures, OOM
struct NumericError : Error { using Error::Error; };   // NaN/Inf guard

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace asap

// Throws ErrType with the message pieces streamed together when cond is false.
#define ASAP_CHECK_T(ErrType, cond, ...)                                  \
  do {                                                                    \
    if (!(cond)) throw ErrType(::asap::detail::concat(__VA_ARGS__));      \
  } while (0)
#define ASAP_CHECK(cond, ...) ASAP_CHECK_T(::asap::Error, cond, __VA_ARGS__)
#define ASAP_CHECK_SHAPE(cond, ...) ASAP_CHECK_T(::asap::ShapeError, cond, __VA_ARGS__)
