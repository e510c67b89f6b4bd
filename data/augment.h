// Per-sample augmentation on float CHW images, DARTS recipe order: normalise, random crop with
// padding, horizontal flip, cutout. Deterministic primitives take explicit positions (tests and
// reproducibility); the random_* wrappers draw those positions from an asap::Generator.
#pragma once
#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "engine/rng.h"

namespace asap::data {

struct AugmentConfig {
  int crop_pad = 0;     // random crop of the original size from the image padded by crop_pad; 0: off
  bool hflip = false;   // horizontal flip with probability 1/2
  int cutout = 0;       // cutout square side length; 0: off
  Normalization norm;   // empty mean: no normalisation (x = pixel / 255)
};

// dst[c,h,w] = (src/255 - mean[c]) / std[c]; a single mean/std value applies to every channel.
void normalize_sample(const uint8_t* src, float* dst, int C, int H, int W, const Normalization& norm);

// Padding value per channel: the normalised value of a black (0) pixel, which is what torchvision's
// RandomCrop(padding=p) pads with, since it pads the raw image before normalisation.
std::vector<float> black_fill(int C, const Normalization& norm);

// Crop window at (dy, dx) of the image zero-padded by `pad` (dy, dx in [0, 2*pad]); out-of-image
// pixels take fill[c] (fill empty: 0). pad 0 with dy = dx = 0 is the identity.
void crop_at(float* x, int C, int H, int W, int pad, int dy, int dx, const std::vector<float>& fill);
void hflip(float* x, int C, int H, int W);
// Zeroes rows [cy - L/2, cy + L/2) x cols [cx - L/2, cx + L/2), clipped to the image, every channel
// (DARTS's Cutout: the centre may be near the border so the square is partly outside).
void cutout_at(float* x, int C, int H, int W, int length, int cy, int cx);

void random_crop(float* x, int C, int H, int W, int pad, const std::vector<float>& fill, Generator& g);
void random_hflip(float* x, int C, int H, int W, Generator& g);
void random_cutout(float* x, int C, int H, int W, int length, Generator& g);

// Normalises src into dst, then applies the enabled augmentations in DARTS order, drawing from g
// in a fixed order (crop dy, dx; flip; cutout cy, cx) so one generator state gives one result.
void augment_sample(const uint8_t* src, float* dst, int C, int H, int W, const AugmentConfig& cfg, Generator& g);

}  // namespace asap::data
