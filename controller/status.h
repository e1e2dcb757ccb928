// The status the controller wants each object to have, computed from the
// Engine: conditions Ready, Conflicting and CapacityExceeded, address counts
// and observedGeneration, as API.md "What the controller writes" says.
//
// Pure: the caller passes the current time (RFC 3339) and the status the
// object has now, so a condition keeps its lastTransitionTime while its status
// does not change and an unchanged object needs no write (level-based,
// idempotent reconcilers).
#ifndef IPGUARD_CONTROLLER_STATUS_H_
#define IPGUARD_CONTROLLER_STATUS_H_

#include <nlohmann/json.hpp>
#include <string>

#include "core/engine.h"

namespace ipguard {

// `obj` must be stored in `engine`. For kinds whose status ipguard does not
// write (KindInfo::owns_status: a Service's status is its load balancer's,
// a MetalLB IPAddressPool's is MetalLB's; collisions among them are told by
// events) the result is null.
nlohmann::json DesiredStatus(const Engine& engine, const Object& obj,
                             const nlohmann::json& current_status, const std::string& now);

// Collisions with older objects, the ones this object must give way to
// (oldest wins), one message each; empty when the object is not Conflicting.
std::vector<std::string> ConflictsToReport(const Engine& engine, const Object& obj);

}  // namespace ipguard

#endif  // IPGUARD_CONTROLLER_STATUS_H_
