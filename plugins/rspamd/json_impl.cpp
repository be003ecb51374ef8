// Boost.JSON, compiled here once in header-only mode (boost/json/src.hpp, as Boost.JSON documents):
// Debian's libboost1.81-dev ships the headers but not libboost_json, and this keeps the binary free of
// one more shared library. No other file may include boost/json/src.hpp.
#include <boost/json/src.hpp>
