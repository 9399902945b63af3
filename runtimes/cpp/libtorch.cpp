// twinbench's C++ runtime: one exported torch twin reloaded with LibTorch.
//
//   twinbench_libtorch torchscript|aoti MODEL INPUT.json OUT_DIR CALLS WARMUP BUDGET_S THREADS
//
// The protocol shared by every foreign harness (runtimes/README.md): INPUT.json names a raw
// little-endian tensor, its dtype and shape; the harness writes to OUT_DIR the logits of each
// sample run at batch 1 (batch1.bin), of the whole batch in one call (batchn.bin) and
// result.json (versions, load time, its own timings). On an error it writes result.json with
// {"error": one line, "stage"} and exits 1: the driver records that line, never a trace.
#include <torch/script.h>
#include <torch/torch.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using Infer = std::function<at::Tensor(const at::Tensor&)>;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// JSON string escaping for the one-line error and the version strings.
std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') { out += '\\'; out += c; }
    else if (c < 0x20) { char buf[8]; snprintf(buf, sizeof buf, "\\u%04x", c); out += buf; }
    else out += c;
  }
  return out + "\"";
}

std::string first_line(const std::string& text) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find_first_not_of(" \t\r") != std::string::npos) return line;
  return "error";
}

// The header is written by twinbench (export/foreign.py): {"dtype", "shape", "data"} only,
// so a regex per field is enough and keeps the harness free of a JSON dependency.
at::Tensor read_input(const std::string& header_path) {
  const std::string header = slurp(header_path);
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("\"dtype\"\\s*:\\s*\"(\\w+)\"")))
    throw std::runtime_error("input header without a dtype");
  const std::string dtype = m[1];
  std::vector<int64_t> shape;
  if (!std::regex_search(header, m, std::regex("\"shape\"\\s*:\\s*\\[([0-9,\\s]*)\\]")))
    throw std::runtime_error("input header without a shape");
  std::stringstream dims(m[1].str());
  for (std::string d; std::getline(dims, d, ',');) shape.push_back(std::stoll(d));
  if (!std::regex_search(header, m, std::regex("\"data\"\\s*:\\s*\"([^\"]+)\"")))
    throw std::runtime_error("input header without a data file");
  const std::string dir = header_path.substr(0, header_path.find_last_of('/') + 1);
  const std::string raw = slurp(dir + m[1].str());
  const auto type = dtype == "float32" ? torch::kFloat32 : dtype == "int64" ? torch::kInt64
                    : dtype == "int32" ? torch::kInt32 : throw std::runtime_error(
                        "unsupported input dtype " + dtype);
  auto t = torch::empty(shape, type);
  if (static_cast<size_t>(t.nbytes()) != raw.size())
    throw std::runtime_error("input data size does not match its shape");
  std::memcpy(t.data_ptr(), raw.data(), raw.size());  // little-endian, as on the host
  return t;
}

void write_floats(const std::string& path, const std::vector<at::Tensor>& parts) {
  std::ofstream f(path, std::ios::binary);
  for (const auto& p : parts) {
    auto c = p.to(torch::kFloat32).contiguous();
    f.write(static_cast<const char*>(c.data_ptr()), c.nbytes());
  }
}

Infer load(const std::string& mode, const std::string& path) {
  if (mode == "torchscript") {
    auto module = std::make_shared<torch::jit::script::Module>(torch::jit::load(path));
    module->eval();
    return [module](const at::Tensor& x) { return module->forward({x}).toTensor(); };
  }
  if (mode == "aoti") {
    auto loader = std::make_shared<torch::inductor::AOTIModelPackageLoader>(path);
    return [loader](const at::Tensor& x) { return loader->run({x})[0]; };
  }
  throw std::runtime_error("unknown mode " + mode + " (torchscript or aoti)");
}

// As twinbench.measure.timing.time_calls: warm-up calls, then up to `calls` timed calls,
// stopping once the timed calls have spent `budget_s`.
std::vector<double> time_calls(const Infer& fn, const at::Tensor& x, int calls, int warmup,
                               double budget_s) {
  for (int i = 0; i < warmup; ++i) fn(x);
  std::vector<double> out;
  double spent = 0;
  for (int i = 0; i < calls && spent < budget_s * 1e3; ++i) {
    auto t0 = Clock::now();
    fn(x);
    out.push_back(ms_since(t0));
    spent += out.back();
  }
  return out;
}

std::string run(char** argv, std::string& stage) {
  const std::string mode = argv[1], model = argv[2], input = argv[3], out = argv[4];
  const int threads = std::stoi(argv[8]);
  at::set_num_threads(threads);
  at::set_num_interop_threads(1);
  c10::InferenceMode guard;  // no autograd bookkeeping, as torch.no_grad in Python
  stage = "load";
  auto t0 = Clock::now();
  Infer fn = load(mode, model);
  const double load_ms = ms_since(t0);
  stage = "run";
  const at::Tensor x = read_input(input);
  std::vector<at::Tensor> ones;
  double first_ms = 0;
  for (int64_t i = 0; i < x.size(0); ++i) {
    t0 = Clock::now();
    ones.push_back(fn(x.narrow(0, i, 1).contiguous()));
    if (i == 0) first_ms = ms_since(t0);
  }
  write_floats(out + "/batch1.bin", ones);
  std::string batch_error;
  try {
    write_floats(out + "/batchn.bin", {fn(x)});
  } catch (const std::exception& e) {  // a static batch of 1 is a finding, not a failure
    batch_error = first_line(e.what());
  }
  auto ms = time_calls(fn, x.narrow(0, 0, 1).contiguous(), std::stoi(argv[5]),
                       std::stoi(argv[6]), std::stod(argv[7]));
  std::ostringstream j;
  j << "\"load_ms\":" << load_ms << ",\"first_call_ms\":" << first_ms
    << ",\"settings\":{\"mode\":" << quote(mode) << ",\"at::get_num_threads\":"
    << at::get_num_threads() << "},\"latency_ms\":[";
  for (size_t i = 0; i < ms.size(); ++i) j << (i ? "," : "") << ms[i];
  j << "]";
  if (!batch_error.empty()) j << ",\"batch_n_error\":" << quote(batch_error);
  return j.str();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 9) {
    std::cerr << "usage: twinbench_libtorch torchscript|aoti MODEL INPUT.json OUT_DIR CALLS "
                 "WARMUP BUDGET_S THREADS\n";
    return 2;
  }
  std::string stage = "load", fields;
  int rc = 0;
  try {
    fields = run(argv, stage);
  } catch (const std::exception& e) {  // c10::Error's what() carries a C++ trace: one line
    fields = "\"stage\":" + quote(stage) + ",\"error\":" + quote(first_line(e.what()));
    rc = 1;
  }
  std::ofstream(std::string(argv[4]) + "/result.json")
      << "{\"language\":\"C++\",\"versions\":{\"libtorch\":" << quote(TORCH_VERSION)
      << ",\"compiler\":" << quote(__VERSION__) << "}," << fields << "}";
  return rc;
}
