// SPDX-License-Identifier: MIT
// libFuzzer target for what the daemon reads from outside its own code: control-socket
// request lines, HTTP request heads of the metrics listener, and the state files of
// state_dir. The first byte picks the reader; the rest is its input. Beyond "no crash, no
// sanitizer report", it checks each contract: errors are one line with the documented exit
// code; a state file that decodes re-encodes to a file that decodes to the same values.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/control.h"
#include "daemon/metrics.h"
#include "daemon/state.h"

namespace {

void one_line(const std::string& s) {
  if (s.find('\n') != std::string::npos || s.find('\r') != std::string::npos) __builtin_trap();
}

void request(std::string_view in) {
  // As the server frames it: the first line, at most kControlMaxRequest bytes.
  const size_t n = amlfw::frame_line(in);
  auto r = amlfw::parse_control_request(n == 0 ? in : in.substr(0, n));
  if (!r.ok()) {
    if (r.error().code != amlfw::Exit::kUsage) __builtin_trap();
    one_line(r.error().message);
    const std::string line = amlfw::control_error_line(r.error().message);
    if (line.empty() || line.back() != '\n' || line.find('\n') != line.size() - 1) __builtin_trap();
    return;
  }
  if (r->cmd == amlfw::ControlCmd::kExplain && r->target.empty()) __builtin_trap();
  if (r->cmd != amlfw::ControlCmd::kExplain && !r->target.empty()) __builtin_trap();
}

void http(std::string_view in) {
  const size_t n = amlfw::frame_http_head(in);
  if (n > in.size()) __builtin_trap();
  const std::string resp = amlfw::http_metrics_response(n == 0 ? in : in.substr(0, n), "amlfw_generation 1\n");
  if (resp.rfind("HTTP/1.1 ", 0) != 0 || resp.find("\r\n\r\n") == std::string::npos) __builtin_trap();
}

void policy_state(std::string_view in) {
  auto s = amlfw::decode_policy_state(in, "fuzz.state");
  if (!s.ok()) {
    if (s.error().code != amlfw::Exit::kData) __builtin_trap();
    one_line(s.error().message);
    return;
  }
  auto again = amlfw::decode_policy_state(amlfw::encode_policy_state(*s), "again");
  if (!again.ok()) __builtin_trap();
  if (again->config_text != s->config_text || again->generation != s->generation ||
      again->tags.tags.size() != s->tags.tags.size() || again->upstreams.addrs != s->upstreams.addrs)
    __builtin_trap();
  for (size_t i = 0; i < s->tags.tags.size(); ++i)
    if (!(again->tags.tags[i].prefixes == s->tags.tags[i].prefixes)) __builtin_trap();
}

void learned_state(std::string_view in) {
  auto s = amlfw::decode_learned_state(in, "fuzz.state");
  if (!s.ok()) {
    if (s.error().code != amlfw::Exit::kData) __builtin_trap();
    one_line(s.error().message);
    return;
  }
  auto again = amlfw::decode_learned_state(amlfw::encode_learned_state(*s), "again");
  if (!again.ok() || again->entries.size() != s->entries.size()) __builtin_trap();
  amlfw::LearnedTable t(64);
  for (const auto& e : s->entries)
    t.record(e.name, {"g"}, {{e.addr, static_cast<uint32_t>(e.expires_at & 0xffff)}}, 0);
  if (t.size() > 64) __builtin_trap();
}

// A state file whose header (magic, version, kind, length, CRC) is made valid around the
// fuzzer's payload, so that the payload decoder itself gets exercised.
std::string framed(uint32_t kind, std::string_view payload) {
  std::string out("AMLFWST\0", 8);
  auto le = [&out](uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  le(amlfw::kStateVersion, 4);
  le(kind, 4);
  le(payload.size(), 8);
  le(amlfw::crc32c(payload), 4);
  le(0, 4);
  out.append(payload);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0: request(in); break;
    case 1: http(in); break;
    case 2: policy_state(in); break;
    case 3: learned_state(in); break;
    case 4: policy_state(framed(1, in)); break;
    case 5: learned_state(framed(2, in)); break;
  }
  return 0;
}
