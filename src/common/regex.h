// std::regex (ECMAScript) for patterns that come from untrusted input: a metadef property's
// `pattern`, a deployment attribute's `regex`, a property-protection file's section.
//
// libstdc++ parses a repetition count (`a{N}`, `a{N,M}`) or a back-reference number (`\N`) into a
// `long` with no overflow check: 19 digits there is undefined behaviour (found by fuzz_metadefs).
// Such numbers are refused before the library sees them; no real pattern needs more than 6 digits
// there, and the library refuses automata past its own state limit anyway (error_space).
#pragma once

#include <regex>
#include <string_view>

#include "common/result.h"

namespace ingot {

// kInvalidArgument (a message for a person, naming the pattern's fault) when the pattern is
// longer than `max_length`, has a count or back-reference of more than 6 digits, or does not compile.
Result<std::regex> CompileUntrustedRegex(
    std::string_view pattern, size_t max_length,
    std::regex::flag_type flags = std::regex::ECMAScript);

}  // namespace ingot
