// Huge pages for the batch commands (`ipguard check`, `ipguard import`).
//
// They build large heaps fast: 50,000 objects touch over 100 MB, and on a
// machine whose kernel hands out transparent huge pages only where asked
// (`madvise`, the default of many distributions) most of that costs one page
// fault per 4 KiB. glibc asks for huge pages for its heap when its tunable
// glibc.malloc.hugetlb=1 is set, and reads tunables only when a process
// starts: so the command starts itself again, once, with it set.
//
// Nothing happens when the kernel's setting is not `madvise` (with `always`
// the heap has huge pages already; with `never` there are none), when the
// tunable is given already (by the user, or by the first start), when
// IPGUARD_HUGE_PAGES=0, or when the program cannot be started again (the
// command then runs in this process as it would have).
#ifndef IPGUARD_CMD_HUGE_PAGES_H_
#define IPGUARD_CMD_HUGE_PAGES_H_

namespace ipguard {

// Call first thing in main, before anything is read; returns only when the
// process carries on as it is.
void StartAgainWithHugePages(char** argv);

}  // namespace ipguard

#endif  // IPGUARD_CMD_HUGE_PAGES_H_
