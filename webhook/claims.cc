#include "webhook/claims.h"

#include <chrono>

#include "core/kinds.h"
#include "core/objects.h"

namespace ipguard::webhook {
namespace {

const kube::Resource& ClaimResource() {
  static const kube::Resource r = kube::ResourceOf(InfoOf(Kind::kIPClaim));
  return r;
}

// "controlPlaneIP 10.10.0.20 of WorkloadCluster team-a/prod": the side the
// admission asked for.
std::string Asked(const WantedClaim& c) {
  std::string out;
  c.field.AppendTo(&out);
  out += ' ';
  out += c.address.ToString();
  out += " of ";
  AppendHolder(&out, c.holder);
  return out;
}

std::string Unwritten(const WantedClaim& c, const std::string& why) {
  return Asked(c) + ": IPClaim " + c.name + " could not be written (" + why +
         "); the write is refused so that no address is admitted unclaimed; try again";
}

std::chrono::milliseconds Left(kube::Clock* clock, kube::Clock::TimePoint deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock->Now());
}

}  // namespace

void DescribeClaimMetrics(kube::Metrics* metrics) {
  using T = kube::Metrics::Type;
  metrics->Describe("ipguard_claim_writes_total", T::kCounter,
                    "IPClaims the webhook wrote for admissions, by result (created, existing: the "
                    "holder's already, shared: a Service that may share the address rides on another's, taken: "
                    "another holder's, error, timeout).");
  metrics->Describe("ipguard_claim_write_duration_seconds", T::kHistogram,
                    "Time to write one admission's IPClaims, waiting for a thread included.");
}

ClaimWriter::ClaimWriter(kube::Client* client, kube::Clock* clock, kube::Metrics* metrics,
                         ClaimWriterOptions options)
    : client_(client), clock_(clock), metrics_(metrics), options_(options) {}

ClaimWriter::~ClaimWriter() { Stop(); }

void ClaimWriter::Start() {
  std::lock_guard<std::mutex> l(mu_);
  if (!threads_.empty()) return;
  stopping_ = false;
  for (int i = 0; i < std::max(1, options_.threads); ++i) threads_.emplace_back([this] { Run(); });
}

void ClaimWriter::Stop() {
  std::deque<Task> left;
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
    left.swap(waiting_);
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (Task& t : left) {
    ClaimOutcome o;
    o.message = Unwritten(t.claims.front(), "ipguard is shutting down");
    t.done(std::move(o));
  }
  for (auto& t : threads) t.join();
}

void ClaimWriter::Claim(std::vector<WantedClaim> claims, kube::Clock::TimePoint deadline,
                        std::function<void(ClaimOutcome)> done,
                        std::function<bool(const ClaimHolder&)> shares) {
  if (claims.empty()) {
    ClaimOutcome o;
    o.ok = true;
    return done(std::move(o));
  }
  std::string refused;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_ || threads_.empty()) {
      refused = "ipguard is shutting down";
    } else if (waiting_.size() >= options_.max_waiting) {
      refused = std::to_string(waiting_.size()) + " admissions are waiting for their claims";
    } else {
      waiting_.push_back({std::move(claims), deadline, std::move(done), std::move(shares)});
    }
  }
  if (refused.empty()) {
    cv_.notify_one();
    return;
  }
  Count("error");
  ClaimOutcome o;
  o.message = Unwritten(claims.front(), refused);
  done(std::move(o));
}

void ClaimWriter::Run() {
  for (;;) {
    Task t;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return stopping_ || !waiting_.empty(); });
      if (waiting_.empty()) return;  // stopping
      t = std::move(waiting_.front());
      waiting_.pop_front();
    }
    auto start = std::chrono::steady_clock::now();
    ClaimOutcome o = Write(t.claims, t.deadline, t.shares);
    if (metrics_) {
      metrics_->Observe(
          "ipguard_claim_write_duration_seconds", {},
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    t.done(std::move(o));
  }
}

ClaimOutcome ClaimWriter::Write(const std::vector<WantedClaim>& claims,
                                kube::Clock::TimePoint deadline,
                                const std::function<bool(const ClaimHolder&)>& shares) {
  ClaimOutcome o;
  std::vector<const WantedClaim*> created;
  for (const WantedClaim& c : claims) {
    bool made = false;
    std::string denial = WriteOne(c, deadline, shares, &made, &o.unanswered);
    if (!denial.empty()) {
      o.message = std::move(denial);
      // Nobody holds the claims made for an object that is refused: give
      // them back now rather than after the 60 s a never-stored holder's
      // claims wait (errors are logged and counted by the client).
      for (const WantedClaim* m : created) {
        client_->Delete(ClaimResource(), "", m->name, std::chrono::seconds(2));
      }
      return o;
    }
    if (made) {
      created.push_back(&c);
      ++o.created;
    } else {
      ++o.existing;
    }
  }
  o.ok = true;
  return o;
}

std::string ClaimWriter::WriteOne(const WantedClaim& claim, kube::Clock::TimePoint deadline,
                                  const std::function<bool(const ClaimHolder&)>& shares,
                                  bool* created, bool* unanswered) {
  *created = false;
  // Each request gets what is left of the deadline; none is sent past it.
  std::chrono::milliseconds left;
  auto out_of_time = [&] {
    left = Left(clock_, deadline);
    if (left.count() > 0) return false;
    Count("timeout");
    return true;
  };
  const char* kNoTime = "no time left of the admission's deadline";
  // Twice at most: a claim that goes between our create (409) and our read
  // (404) is created again.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (out_of_time()) return Unwritten(claim, kNoTime);
    auto made = client_->Create(ClaimResource(), "", ClaimObject(claim), left);
    if (made.ok()) {
      Count("created");
      *created = true;
      return "";
    }
    const kube::ApiError& e = made.error();
    if (!e.IsConflict()) {
      Count(e.code == 0 ? "timeout" : "error");
      *unanswered = e.code == 0;
      return Unwritten(claim, e.ToString());
    }
    if (out_of_time()) return Unwritten(claim, kNoTime);
    auto got = client_->Get(ClaimResource(), "", claim.name, left);
    if (!got.ok()) {
      if (got.error().IsNotFound()) continue;
      Count(got.error().code == 0 ? "timeout" : "error");
      *unanswered = got.error().code == 0;
      return Unwritten(claim, got.error().ToString());
    }
    auto parsed = ParseObject(got.value());
    if (!parsed.ok() || parsed->kind != Kind::kIPClaim) {
      Count("error");
      return Unwritten(claim, "the IPClaim in the cluster cannot be read");
    }
    const ClaimHolder& holder = parsed->claim->holder;
    if (SameHolder(holder, claim.holder)) {
      Count("existing");
      return "";
    }
    if (shares && shares(holder)) {
      Count("shared");
      return "";
    }
    Count("taken");
    std::string msg = Asked(claim) + " is claimed by ";
    AppendHolder(&msg, holder);
    msg += " (IPClaim " + claim.name + ")";
    return msg;
  }
  Count("error");
  return Unwritten(claim, "it was created and removed by others while being written");
}

void ClaimWriter::Count(const char* result) {
  if (metrics_) metrics_->Add("ipguard_claim_writes_total", {{"result", result}});
}

}  // namespace ipguard::webhook
