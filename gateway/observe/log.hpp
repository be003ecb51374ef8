// One line per event on stderr, "text" (key=value) or "json"; every line names its level.
#pragma once
#include <initializer_list>
#include <optional>
#include <type_traits>
#include <string>
#include <string_view>
#include <vector>

namespace gw::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };
enum class Format { text, json };

struct Field {
  std::string_view key;
  std::string value;
  bool number = false;  // written unquoted in JSON (numbers, true/false)
  bool is_list = false;  // JSON: a list of strings; text: the items joined with ','
  std::vector<std::string> list;
  Field(std::string_view k, std::string v) : key(k), value(std::move(v)) {}
  Field(std::string_view k, bool b) : key(k), value(b ? "true" : "false"), number(true) {}
  Field(std::string_view k, std::vector<std::string> items) : key(k), is_list(true), list(std::move(items)) {}
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v ? v : "") {}
  template <typename N, typename = std::enable_if_t<std::is_arithmetic_v<N>>>
  Field(std::string_view k, N n) : key(k), value(std::to_string(n)), number(true) {}
};

void configure(Level level, Format format);
std::optional<Level> parse_level(std::string_view name);
bool enabled(Level level);
void write(Level level, std::string_view event, std::initializer_list<Field> fields);
void write(Level level, std::string_view event, const std::vector<Field>& fields);

inline void debug(std::string_view e, std::initializer_list<Field> f = {}) { if (enabled(Level::debug)) write(Level::debug, e, f); }
inline void info(std::string_view e, std::initializer_list<Field> f = {}) { if (enabled(Level::info)) write(Level::info, e, f); }
inline void warn(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::warn, e, f); }
inline void error(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::error, e, f); }

}  // namespace gw::log
