// The message as received: one contiguous buffer of the unstuffed content (CRLF line ends), parsed
// lazily into header fields. Plugins read it in place; removed fields are skipped on forward.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gw {

struct HeaderField {
  size_t offset = 0;      // start of the field's name in data()
  size_t length = 0;      // whole field including its final CRLF
  size_t name_length = 0;
  bool removed = false;
};

class Message {
 public:
  // Write access to the content: the parsed-field cache is dropped, since the caller may replace it.
  std::string& buffer() {
    parsed_ = false;
    fields_.clear();
    return data_;
  }
  const std::string& data() const { return data_; }
  size_t size() const { return data_.size(); }
  void clear();

  const std::vector<HeaderField>& fields() const;
  std::string_view field_name(const HeaderField& f) const;
  std::string_view field_raw(const HeaderField& f) const;  // "Name: value\r\n" with folds
  std::string field_value(const HeaderField& f) const;      // unfolded, leading whitespace removed
  // First value of the named field (case-insensitive), nullopt when absent.
  std::optional<std::string> header(std::string_view name) const;
  std::vector<std::string> headers(std::string_view name) const;
  size_t body_offset() const;  // first byte after the blank line (or size() when there is none)
  std::string_view body() const;
  void remove_field(size_t index);

  // Edits for filters (milter, rspamd, Lua): each rebuilds the buffer once, dropping removed fields,
  // so indices taken from fields() before an edit are stale after it. `value` is written after
  // "Name: " as given (folds must already be CRLF WSP). `index` counts the fields() list.
  void insert_field(size_t index, std::string_view name, std::string_view value);  // 0 = above the first
  void append_field(std::string_view name, std::string_view value);                // after the last
  void set_field_value(size_t index, std::string_view value);
  void replace_body(std::string_view body);  // CRLF line ends

 private:
  void parse() const;
  // Rebuilds data_ from the kept fields, `insert` placed before field `at`, and `body`.
  void rebuild(size_t at, std::string_view insert, std::string_view body);
  std::string data_;
  mutable bool parsed_ = false;
  mutable std::vector<HeaderField> fields_;
  mutable size_t body_offset_ = 0;
};

bool iequals(std::string_view a, std::string_view b);

}  // namespace gw
