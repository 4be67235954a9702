// UTF-8 well-formedness (RFC 3629): what the API checks before client text becomes data, and what the
// log uses to decide which bytes to escape. Overlong forms, surrogates (U+D800..U+DFFF) and code points
// past U+10FFFF are ill-formed, as in every strict JSON parser a client may use on our output.
#pragma once

#include <cstddef>
#include <string_view>

namespace ingot {

// True when `s` is entirely well-formed UTF-8. Runs over ASCII eight bytes at a time.
bool IsValidUtf8(std::string_view s);

// The length (1..4) of the well-formed UTF-8 sequence at the start of `s`; 0 when `s` is empty or
// does not start with one.
size_t Utf8SequenceLength(std::string_view s);

}  // namespace ingot
