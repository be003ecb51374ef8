// The header parser plugins and Lua read: fields lie inside the message, in order, never overlap.
#include <cstdint>
#include <cstdlib>

#include "gateway/core/message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  gw::Message m;
  m.buffer().assign(reinterpret_cast<const char*>(data), size);
  std::size_t end = 0;
  for (auto& f : m.fields()) {
    if (f.offset < end || f.offset + f.length > size || f.name_length == 0 || f.name_length >= f.length) std::abort();
    end = f.offset + f.length;
    (void)m.field_value(f);
  }
  if (m.body_offset() > size) std::abort();
  (void)m.header("Subject");
  (void)m.headers("Received");
  return 0;
}
