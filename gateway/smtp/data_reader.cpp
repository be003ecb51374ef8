#include "gateway/smtp/data_reader.hpp"

#include <algorithm>
#include <cstring>

namespace gw::smtp {

DataReader::DataReader(std::string& out, std::uint64_t max_size, std::size_t max_line)
    : out_(out), max_size_(max_size), max_line_(max_line) {
  // Most messages fit: no doubling from an empty string (eight reallocations and copies for 4 KiB).
  const std::size_t first = static_cast<std::size_t>(std::min<std::uint64_t>(max_size, 16 * 1024));
  if (out_.capacity() < first) out_.reserve(first);
}

// Past a limit the content is refused anyway; what was kept is cut at the limit itself, so the
// result does not depend on how the input was split into reads (a run and its pieces agree).
void DataReader::put(const char* p, std::size_t n) {
  if (!too_big_ && !line_too_long_) {
    const std::size_t line_room = line_len_ < max_line_ ? max_line_ - line_len_ : 0;
    const std::uint64_t size_room = total_ < max_size_ ? max_size_ - total_ : 0;
    out_.append(p, static_cast<std::size_t>(std::min<std::uint64_t>({n, line_room, size_room})));
  }
  line_len_ += n;
  if (line_len_ > max_line_) line_too_long_ = true;
  total_ += n;
  if (total_ > max_size_) too_big_ = true;
}

void DataReader::newline(bool real) {
  if (!real) ++normalised_;
  line_len_ = 0;
  total_ += 2;
  if (total_ > max_size_) too_big_ = true;
  if (!too_big_ && !line_too_long_) out_.append("\r\n", 2);
  at_line_start_ = true;
  line_start_real_ = real;
}

std::size_t DataReader::feed(const char* p, std::size_t n) {
  const char* const begin = p;
  const char* const end = p + n;
  while (p < end && !done_) {
    const char c = *p;
    if (pending_cr_) {
      pending_cr_ = false;
      if (c == '\n') {
        ++p;
        if (dot_pending_) {
          dot_pending_ = false;
          if (line_start_real_) {  // CRLF . CRLF
            done_ = true;
            break;
          }
          put(".", 1);  // "." line after a bare line end: content
        }
        newline(true);
        continue;
      }
      // bare CR: a line end of its own; c is handled below as the next line's first byte
      if (dot_pending_) {
        dot_pending_ = false;
        put(".", 1);
      }
      newline(false);
    }
    if (dot_pending_) {
      if (c == '\r') {
        pending_cr_ = true;
        ++p;
        continue;
      }
      dot_pending_ = false;
      if (c == '\n') {
        put(".", 1);
        newline(false);
        ++p;
        continue;
      }
      // a transparency dot: dropped, the line goes on with c
    }
    if (at_line_start_) {
      at_line_start_ = false;
      if (c == '.') {
        dot_pending_ = true;
        ++p;
        continue;
      }
    }
    if (c == '\r') {
      pending_cr_ = true;
      ++p;
      continue;
    }
    if (c == '\n') {
      newline(false);
      ++p;
      continue;
    }
    // A run of ordinary bytes up to the next CR or LF, found with memchr and copied at once.
    const char* q = static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(end - p)));
    if (!q) q = end;
    if (const void* lf = std::memchr(p, '\n', static_cast<std::size_t>(q - p))) q = static_cast<const char*>(lf);
    const std::size_t len = static_cast<std::size_t>(q - p);
    // The common case, a line ending in CRLF within every limit: the line and its CRLF in one
    // append, exactly what put() and newline(true) would do one after the other.
    if (q + 1 < end && q[0] == '\r' && q[1] == '\n' && !too_big_ && !line_too_long_ &&
        line_len_ + len <= max_line_ && total_ + len + 2 <= max_size_) {
      out_.append(p, len + 2);
      total_ += len + 2;
      line_len_ = 0;
      at_line_start_ = true;
      line_start_real_ = true;
      p = q + 2;
      continue;
    }
    put(p, len);
    p = q;
  }
  return static_cast<std::size_t>(p - begin);
}

}  // namespace gw::smtp
