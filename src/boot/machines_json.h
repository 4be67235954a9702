// Profiles and machines as JSON documents: the body of /boot/v1/profiles and /boot/v1/machines,
// and the form in which the SQLite repository stores them (one document per row beside the
// indexed columns), so the two never drift apart.
#pragma once

#include <boost/json.hpp>

#include "boot/machines.h"

namespace ingot::boot {

boost::json::object ProfileToJson(const Profile& p);
boost::json::object MachineToJson(const Machine& m);

// Reads a document, refusing unknown keys and wrong types (kInvalidArgument naming the key).
// Timestamps and, for machines, server-kept fields (first_seen, last_seen, last_address,
// last_profile, state) are read only when `stored` is true (the repository's own documents).
Result<Profile> ProfileFromJson(const boost::json::value& doc, bool stored);
Result<Machine> MachineFromJson(const boost::json::value& doc, bool stored);

// Merges a partial document (PATCH-style: given keys replace, null clears) into `p` / `m`.
Status MergeProfile(Profile& p, const boost::json::object& patch);
Status MergeMachine(Machine& m, const boost::json::object& patch);

}  // namespace ingot::boot
