// wkv grad -m MODEL --batch BATCH.safetensors [--l2wrap] -o OUT.safetensors: loss, logits and
// every parameter's gradient for one batch (RWKV-7), for checking the backward pass.
#include "cli.hpp"
#include "formats/formats.hpp"
#include "train/batch.hpp"
#include "train/params.hpp"
#include "train/rwkv7.hpp"

namespace wkv::cli {

int cmd_grad(int argc, char** argv) {
  CLI::App app{
      "Write the loss, logits and every parameter's gradient for one batch (RWKV-7, fp32).",
      "wkv grad"};
  std::string model, batch, out;
  bool l2wrap = false;
  app.add_option("-m,--model", model, "RWKV-7 checkpoint (.pth or .safetensors)")->required();
  app.add_option("--batch", batch, "safetensors with int32/int64 'tokens' and 'targets' [B, T]")
      ->required();
  app.add_flag("--l2wrap", l2wrap, "add the official L2Wrap term to the gradient");
  app.add_option("-o,--output", out, "output .safetensors: loss [1], logits [B,T,V], gradients")
      ->required();
  return run(app, argc, argv, [&] {
    auto tensors = load_tensors(model);
    if (!tensors) return fail(tensors.error());
    auto params = train::params_from_tensors<float>(*tensors, model);
    if (!params) return fail(params.error());
    auto bt = load_safetensors(batch);
    if (!bt) return fail(bt.error());
    auto b = train::batch_from_tensors(*bt, size_t(params->d.V), batch);
    if (!b) return fail(b.error());
    constexpr uint64_t kMaxLogits = uint64_t(1) << 31;  // floats of the [B, T, V] logits
    if (uint64_t(b->B) * b->T * uint64_t(params->d.V) > kMaxLogits)
      return fail(Error{batch + ": batch [" + std::to_string(b->B) + ", " + std::to_string(b->T) +
                        "] is too large: its logits would exceed 2^31 floats"});
    const train::GradResult r = train::compute_gradients(*params, *b, l2wrap);
    TensorMap o = train::params_to_tensors(r.grads);
    o["loss"] = Tensor::from_f32({1}, {float(r.loss)});
    o["logits"] = Tensor::from_f32({int64_t(b->B), int64_t(b->T), params->d.V}, r.logits);
    Status st = save_safetensors(out, o, {{"format", "wkv-grad"}, {"l2wrap", l2wrap ? "1" : "0"}});
    if (!st) return fail(st.error());
    return 0;
  });
}

WKV_COMMAND("grad", "loss, logits and parameter gradients of one batch (RWKV-7)", cmd_grad);

}  // namespace wkv::cli
