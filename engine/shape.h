// Small fixed-capacity shape/stride vectors: no heap allocation per tensor.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "engine/error.h"

namespace asap {

constexpr int kMaxDims = 6;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) {
    ASAP_CHECK_SHAPE(dims.size() <= kMaxDims, "tensor rank ", dims.size(), " exceeds ", kMaxDims);
    for (int64_t d : dims) push_back(d);
  }
  template <typename It>
  Shape(It begin, It end) {
    for (; begin != end; ++begin) push_back(static_cast<int64_t>(*begin));
  }
  void push_back(int64_t d) {
    ASAP_CHECK_SHAPE(n_ < kMaxDims, "tensor rank exceeds ", kMaxDims);
    ASAP_CHECK_SHAPE(d >= 0, "negative dimension ", d);
    d_[n_++] = d;
  }
  int ndim() const { return n_; }
  int64_t operator[](int i) const { return d_[i < 0 ? i + n_ : i]; }
  int64_t& operator[](int i) { return d_[i < 0 ? i + n_ : i]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < n_; ++i) n *= d_[i];
    return n;
  }
  bool operator==(const Shape& o) const {
    if (n_ != o.n_) return false;
    for (int i = 0; i < n_; ++i)
      if (d_[i] != o.d_[i]) return false;
    return true;
  }
  bool operator!=(const Shape& o) const { return !(*this == o); }
  const int64_t* begin() const { return d_.data(); }
  const int64_t* end() const { return d_.data() + n_; }
  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < n_; ++i) s += (i ? ", " : "") + std::to_string(d_[i]);
    return s + "]";
  }

 private:
  std::array<int64_t, kMaxDims> d_{};
  int n_ = 0;
};

inline Shape contiguous_strides(const Shape& s) {
  Shape st;
  for (int i = 0; i < s.ndim(); ++i) st.push_back(0);
  int64_t acc = 1;
  for (int i = s.ndim() - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s[i] > 0 ? s[i] : 1;
  }
  return st;
}

}  // namespace asap
