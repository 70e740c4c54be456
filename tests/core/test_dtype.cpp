#include <cmath>

#include "core/dtype.hpp"
#include "core/tensor.hpp"
#include "test_util.hpp"

namespace wkv {

TEST(DType, HalfRoundTripsEveryFiniteValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    uint16_t x = static_cast<uint16_t>(h);
    float f = f16_to_f32(x);
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_f16(f), x) << "h=" << h;
  }
}

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1.0078125: ties to even (1.0).
  EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.01171875f), 0x3f82);
}

TEST(Tensor, StridedToF32FollowsStrides) {
  // A transposed 2x3 view of a 3x2 buffer.
  Tensor base = Tensor::from_f32({3, 2}, {1, 2, 3, 4, 5, 6});
  Tensor t = base;
  t.shape = {2, 3};
  t.strides = {1, 2};
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(to_f32(t), (std::vector<float>{1, 3, 5, 2, 4, 6}));
}

}  // namespace wkv
