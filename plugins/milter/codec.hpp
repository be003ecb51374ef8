// The Sendmail milter protocol, version 6, as the MTA side speaks it: packets are a 4-octet
// big-endian length (command octet included), one command octet and the command's data.
// Pure functions and an incremental decoder, no I/O: the decoder never trusts a length from the
// milter beyond kMaxPacket, so a lying or broken milter costs a bounded buffer and an error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gw::milter {

constexpr std::uint32_t kVersion = 6;
constexpr std::size_t kMaxChunk = 65535;          // body octets per SMFIC_BODY packet
constexpr std::size_t kMaxPacket = 1024 * 1024 + 64;  // largest reply we read (libmilter's own ceiling is 1 MiB)

// Commands (MTA -> milter)
namespace cmd {
constexpr char abort = 'A', body = 'B', connect = 'C', macro = 'D', eob = 'E', helo = 'H', header = 'L', mail = 'M',
               eoh = 'N', optneg = 'O', quit = 'Q', rcpt = 'R', data = 'T';
}

// Replies (milter -> MTA)
namespace rep {
constexpr char addrcpt = '+', delrcpt = '-', addrcpt_par = '2', shutdown = '4', accept = 'a', replbody = 'b',
               cont = 'c', discard = 'd', chgfrom = 'e', conn_fail = 'f', addheader = 'h', insheader = 'i',
               setsymlist = 'l', chgheader = 'm', progress = 'p', quarantine = 'q', reject = 'r', skip = 's',
               tempfail = 't', replycode = 'y', optneg = 'O';
}

// SMFIF_*: the actions the MTA offers. No envelope changes are offered.
namespace act {
constexpr std::uint32_t addhdrs = 0x01, chgbody = 0x02, addrcpt = 0x04, delrcpt = 0x08, chghdrs = 0x10,
                        quarantine = 0x20, chgfrom = 0x40, addrcpt_par = 0x80, setsymlist = 0x100;
constexpr std::uint32_t offered = addhdrs | chgbody | chghdrs | quarantine | setsymlist;
}

// SMFIP_*: protocol steps the milter may ask to skip (NO*) or to leave unanswered (NR_*).
namespace proto {
constexpr std::uint32_t noconnect = 0x1, nohelo = 0x2, nomail = 0x4, norcpt = 0x8, nobody = 0x10, nohdrs = 0x20,
                        noeoh = 0x40, nr_hdr = 0x80, nounknown = 0x100, nodata = 0x200, skip = 0x400,
                        rcpt_rej = 0x800, nr_conn = 0x1000, nr_helo = 0x2000, nr_mail = 0x4000, nr_rcpt = 0x8000,
                        nr_data = 0x10000, nr_unkn = 0x20000, nr_eoh = 0x40000, nr_body = 0x80000,
                        hdr_leadspc = 0x100000;
// Everything but RCPT_REJ (refused recipients are never shown) and the MDS_* size bits.
constexpr std::uint32_t offered = noconnect | nohelo | nomail | norcpt | nobody | nohdrs | noeoh | nr_hdr | nounknown |
                                  nodata | skip | nr_conn | nr_helo | nr_mail | nr_rcpt | nr_data | nr_unkn | nr_eoh |
                                  nr_body | hdr_leadspc;
}

// ---- encoding (MTA -> milter) -------------------------------------------------------------------

std::string packet(char command, std::string_view data);
// The 5-octet head of a packet whose data (length n) is written separately (the body, in place).
std::string packet_head(char command, std::size_t n);
std::string optneg(std::uint32_t actions, std::uint32_t protocol);
// family '4' or '6' with port and address; 'U' (unknown) sends neither.
std::string connect(std::string_view hostname, char family, std::uint16_t port, std::string_view address);
std::string helo(std::string_view name);
// `args` is the address in angle brackets followed by the ESMTP parameters.
std::string envelope(char command, const std::vector<std::string>& args);
std::string header(std::string_view name, std::string_view value);
std::string macros(char stage, const std::vector<std::pair<std::string, std::string>>& values);

// ---- decoding (milter -> MTA) -------------------------------------------------------------------

struct Packet {
  char command = 0;
  std::string data;
};

// Feed bytes as they arrive; next() hands out whole packets. A length of 0 or above kMaxPacket is an
// error that sticks: the connection is then broken and must be dropped.
class Decoder {
 public:
  void feed(const char* p, std::size_t n);
  std::optional<Packet> next();
  bool error() const { return error_; }
  const std::string& error_text() const { return error_text_; }
  std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  std::string buf_;
  std::size_t pos_ = 0;
  bool error_ = false;
  std::string error_text_;
};

struct OptNeg {
  std::uint32_t version = 0;
  std::uint32_t actions = 0;
  std::uint32_t protocol = 0;
  // SMFIR_SETSYMLIST part: for a stage index (0 connect, 1 helo, 2 mail, 3 rcpt, 4 data, 5 eom, 6 eoh)
  // the macro names the milter wants; absent = the defaults.
  std::vector<std::pair<std::uint32_t, std::vector<std::string>>> symlists;
};
std::optional<OptNeg> parse_optneg(std::string_view data);

struct HeaderEdit {
  std::uint32_t index = 0;  // insheader: position; chgheader: occurrence (1-based)
  std::string name;
  std::string value;
};
// SMFIR_ADDHEADER (name, value), SMFIR_INSHEADER and SMFIR_CHGHEADER (index, name, value).
std::optional<HeaderEdit> parse_header_edit(char command, std::string_view data);

struct ReplyCode {
  int code = 0;           // 4xx or 5xx
  std::string enhanced;   // "5.7.1" or empty
  std::string text;       // one line, printable
};
// SMFIR_REPLYCODE: "550 5.7.1 text" (or a multi-line "550-5.7.1 a\r\n550 5.7.1 b"); nullopt unless a
// well-formed 4xx or 5xx.
std::optional<ReplyCode> parse_replycode(std::string_view data);

// The first NUL-terminated string of `data` (the whole of it when there is no NUL).
std::string_view cstring(std::string_view data);
// A header value from a milter as it goes into a message: LF or CRLF line breaks become CRLF folds
// (a continuation line that does not start with WSP gets a TAB), bare CR and NUL are dropped.
std::string fold_value(std::string_view v);
// A header name a milter may set: printable ASCII without ':' or space, not empty.
bool valid_field_name(std::string_view name);

}  // namespace gw::milter
