// DATA reader: whatever the split of the input, the result is the same, the output never holds a
// bare CR or LF, and the reader never consumes past CRLF.CRLF.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "gateway/smtp/data_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t chunk = 1 + data[0] % 17;
  const char* p = reinterpret_cast<const char*>(data + 1);
  const std::size_t n = size - 1;

  std::string whole;
  gw::smtp::DataReader a(whole, 1 << 20);
  std::size_t used_whole = a.feed(p, n);

  std::string parts;
  gw::smtp::DataReader b(parts, 1 << 20);
  std::size_t used = 0;
  while (used < n && !b.done()) {
    std::size_t k = std::min(chunk, n - used);
    std::size_t u = b.feed(p + used, k);
    if (u > k) std::abort();
    used += u;
    if (u < k && !b.done()) std::abort();
  }
  if (a.done() != b.done() || whole != parts) std::abort();
  if (a.done() && used != used_whole) std::abort();
  for (std::size_t i = 0; i < whole.size(); ++i) {
    if (whole[i] == '\n' && (i == 0 || whole[i - 1] != '\r')) std::abort();
    if (whole[i] == '\r' && (i + 1 >= whole.size() || whole[i + 1] != '\n')) {
      if (a.done()) std::abort();  // only a CR still waiting for its LF may end an unfinished read
    }
  }
  if (a.done() && used_whole < 3) std::abort();
  return 0;
}
