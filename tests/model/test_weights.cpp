// WeightReader: matrices keep the dtype of the file where the kernels take it, so each token
// reads the bytes the file holds (wkv bench's ceiling counts those), and transposed LoRA
// factors hold exactly the stored values.
#include <cstring>

#include "core/dtype.hpp"
#include "model/weights.hpp"
#include "test_util.hpp"

namespace wkv {
namespace {

std::vector<uint16_t> bf16_bits(const std::vector<float>& v) {
  std::vector<uint16_t> out;
  for (float f : v) out.push_back(f32_to_bf16(f));
  return out;
}

// [cols, rows] stored, used as [rows, cols]: values c * 10 + r + 0.5 (exact in bf16).
std::vector<float> stored_values(int64_t rows, int64_t cols) {
  std::vector<float> v;
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r) v.push_back(static_cast<float>(c * 10 + r) + 0.5f);
  return v;
}

TEST(WeightReader, TransposedBf16StaysBf16WithTheSameValues) {
  const int64_t rows = 3, cols = 5;
  TensorMap t;
  t["w1"] = Tensor::from_bf16({cols, rows}, bf16_bits(stored_values(rows, cols)));
  WeightReader rd(t, "test");
  auto m = rd.mat_t("w1", rows, cols);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->dtype, DType::bf16);
  EXPECT_EQ(m->rows, 3u);
  EXPECT_EQ(m->cols, 5u);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    m->row(static_cast<size_t>(r), row.data());
    for (int64_t c = 0; c < cols; ++c)
      EXPECT_EQ(row[static_cast<size_t>(c)], static_cast<float>(c * 10 + r) + 0.5f)
          << "row " << r << " col " << c;
  }
  // And it multiplies as the f32 transposition would: y = W x with x = e_c picks column c.
  for (int64_t c = 0; c < cols; ++c) {
    std::vector<float> x(cols, 0.0f), y(rows, -1.0f);
    x[static_cast<size_t>(c)] = 1.0f;
    matmul(*m, x.data(), y.data(), 1);
    for (int64_t r = 0; r < rows; ++r)
      EXPECT_EQ(y[static_cast<size_t>(r)], static_cast<float>(c * 10 + r) + 0.5f);
  }
}

TEST(WeightReader, TransposedF32StaysF32) {
  const int64_t rows = 4, cols = 2;
  TensorMap t;
  t["w"] = Tensor::from_f32({cols, rows}, stored_values(rows, cols));
  WeightReader rd(t, "test");
  auto m = rd.mat_t("w", rows, cols);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->dtype, DType::f32);
  const float* d = static_cast<const float*>(m->data);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      EXPECT_EQ(d[r * cols + c], static_cast<float>(c * 10 + r) + 0.5f);
}

TEST(WeightReader, TransposedWrongShapeIsAnErrorNamingTheTensor) {
  TensorMap t;
  t["w"] = Tensor::from_f32({2, 3}, std::vector<float>(6, 1.0f));
  WeightReader rd(t, "file.gguf");
  auto m = rd.mat_t("w", 2, 3);  // wants [3, 2] stored
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("file.gguf"), std::string::npos) << m.error().message;
  EXPECT_NE(m.error().message.find("'w'"), std::string::npos) << m.error().message;
}

}  // namespace
}  // namespace wkv
