#include "data/augment.h"

#include <algorithm>

#include "engine/error.h"

namespace asap::data {

namespace {
float channel_value(const std::vector<float>& v, int c, float dflt) {
  if (v.empty()) return dflt;
  return v.size() == 1 ? v[0] : v[c];
}
}  // namespace

void normalize_sample(const uint8_t* src, float* dst, int C, int H, int W, const Normalization& norm) {
  ASAP_CHECK(norm.mean.size() == norm.stddev.size(), "normalisation has ", norm.mean.size(), " means but ",
             norm.stddev.size(), " std values");
  ASAP_CHECK(norm.mean.size() <= 1 || static_cast<int>(norm.mean.size()) == C, "normalisation has ",
             norm.mean.size(), " channels but the images have ", C);
  const int64_t hw = int64_t(H) * W;
  for (int c = 0; c < C; ++c) {
    const float mean = channel_value(norm.mean, c, 0.f);
    const float inv_std = 1.f / channel_value(norm.stddev, c, 1.f);
    const uint8_t* s = src + c * hw;
    float* d = dst + c * hw;
    for (int64_t i = 0; i < hw; ++i) d[i] = (s[i] * (1.f / 255.f) - mean) * inv_std;
  }
}

std::vector<float> black_fill(int C, const Normalization& norm) {
  std::vector<float> fill(C);
  for (int c = 0; c < C; ++c) fill[c] = -channel_value(norm.mean, c, 0.f) / channel_value(norm.stddev, c, 1.f);
  return fill;
}

void crop_at(float* x, int C, int H, int W, int pad, int dy, int dx, const std::vector<float>& fill) {
  ASAP_CHECK(dy >= 0 && dy <= 2 * pad && dx >= 0 && dx <= 2 * pad, "crop offset (", dy, ", ", dx,
             ") outside [0, ", 2 * pad, "]");
  const int sy = dy - pad, sx = dx - pad;  // source shift
  if (sy == 0 && sx == 0) return;
  std::vector<float> src(x, x + int64_t(C) * H * W);
  for (int c = 0; c < C; ++c) {
    const float f = fill.empty() ? 0.f : fill[c];
    const float* s = src.data() + int64_t(c) * H * W;
    float* d = x + int64_t(c) * H * W;
    for (int y = 0; y < H; ++y) {
      const int yy = y + sy;
      for (int xo = 0; xo < W; ++xo) {
        const int xx = xo + sx;
        d[y * W + xo] = (yy >= 0 && yy < H && xx >= 0 && xx < W) ? s[yy * W + xx] : f;
      }
    }
  }
}

void hflip(float* x, int C, int H, int W) {
  for (int64_t r = 0; r < int64_t(C) * H; ++r) std::reverse(x + r * W, x + (r + 1) * W);
}

void cutout_at(float* x, int C, int H, int W, int length, int cy, int cx) {
  const int y1 = std::clamp(cy - length / 2, 0, H), y2 = std::clamp(cy + length / 2, 0, H);
  const int x1 = std::clamp(cx - length / 2, 0, W), x2 = std::clamp(cx + length / 2, 0, W);
  for (int c = 0; c < C; ++c)
    for (int y = y1; y < y2; ++y) std::fill(x + (int64_t(c) * H + y) * W + x1, x + (int64_t(c) * H + y) * W + x2, 0.f);
}

void random_crop(float* x, int C, int H, int W, int pad, const std::vector<float>& fill, Generator& g) {
  const int dy = static_cast<int>(g.randint(2 * pad + 1));
  const int dx = static_cast<int>(g.randint(2 * pad + 1));
  crop_at(x, C, H, W, pad, dy, dx, fill);
}

void random_hflip(float* x, int C, int H, int W, Generator& g) {
  if (g.uniform() < 0.5) hflip(x, C, H, W);
}

void random_cutout(float* x, int C, int H, int W, int length, Generator& g) {
  const int cy = static_cast<int>(g.randint(H));
  const int cx = static_cast<int>(g.randint(W));
  cutout_at(x, C, H, W, length, cy, cx);
}

void augment_sample(const uint8_t* src, float* dst, int C, int H, int W, const AugmentConfig& cfg, Generator& g) {
  normalize_sample(src, dst, C, H, W, cfg.norm);
  if (cfg.crop_pad > 0) random_crop(dst, C, H, W, cfg.crop_pad, black_fill(C, cfg.norm), g);
  if (cfg.hflip) random_hflip(dst, C, H, W, g);
  if (cfg.cutout > 0) random_cutout(dst, C, H, W, cfg.cutout, g);
}

}  // namespace asap::data
