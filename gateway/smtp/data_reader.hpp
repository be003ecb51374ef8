// Incremental DATA reader (RFC 5321 §4.5.2). Feed it the bytes after "354" as they arrive; it
// writes the unstuffed message into the caller's string and stops exactly after <CRLF>.<CRLF>.
//
// Smuggling: the end of data is only CRLF "." CRLF, where both CRLFs are real. A bare LF or a bare CR
// anywhere in the content is normalised to CRLF (and counted), so what we forward never holds a bare
// line end an upstream could read differently; a "." line that follows a bare line end is content,
// and is dot-stuffed again on forward.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace gw::smtp {

class DataReader {
 public:
  // `max_size`: bytes of content kept; past it the rest is read and dropped (too_big()).
  // `max_line`: content octets of one line after unstuffing (998 per RFC 5321 §4.5.3.1.6).
  DataReader(std::string& out, std::uint64_t max_size, std::size_t max_line = 998);

  // Consumes up to n bytes; returns how many were used (less than n only once done()).
  std::size_t feed(const char* p, std::size_t n);

  bool done() const { return done_; }
  bool too_big() const { return too_big_; }
  bool line_too_long() const { return line_too_long_; }
  std::uint64_t total() const { return total_; }           // content size seen, kept or not
  std::uint64_t normalised() const { return normalised_; }  // bare CR/LF turned into CRLF

 private:
  void put(const char* p, std::size_t n);
  void newline(bool real);
  std::string& out_;
  std::uint64_t max_size_;
  std::size_t max_line_;
  std::size_t line_len_ = 0;
  std::uint64_t total_ = 0;
  std::uint64_t normalised_ = 0;
  bool at_line_start_ = true;
  bool line_start_real_ = true;  // the current line began after a real CRLF (or at the start)
  bool pending_cr_ = false;
  bool dot_pending_ = false;     // a "." at line start, not yet known to be stuffing or the end
  bool done_ = false;
  bool too_big_ = false;
  bool line_too_long_ = false;
};

}  // namespace gw::smtp
