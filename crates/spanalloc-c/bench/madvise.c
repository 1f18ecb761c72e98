/* MADV_DONTNEED against MADV_FREE on 256 MiB of touched anonymous memory:
 * resident size right after the advice, and the cost of touching the pages
 * again (see ARCHITECTURE.md, "The scavenger").
 *
 *   gcc -O2 -o /tmp/madv crates/spanalloc-c/bench/madvise.c
 *   /tmp/madv dontneed; /tmp/madv free
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
static long rss_mib(void){ long a,b; FILE*f=fopen("/proc/self/statm","r"); fscanf(f,"%ld %ld",&a,&b); fclose(f); return b*4096/1048576; }
static double now(void){ struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec+t.tv_nsec/1e9; }
int main(int argc,char**argv){ int adv = argv[1][0]=='f' ? MADV_FREE : MADV_DONTNEED; size_t n=256<<20;
 char*p=mmap(0,n,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); memset(p,1,n);
 long before=rss_mib(); double t0=now(); madvise(p,n,adv); double t1=now(); long after=rss_mib();
 double t2=now(); for(size_t i=0;i<n;i+=4096) p[i]=2; double t3=now();
 printf("%s: rss %ld -> %ld MiB, madvise %.1f ms, retouch %.1f ms, rss after retouch %ld MiB\n", adv==MADV_FREE?"MADV_FREE":"MADV_DONTNEED", before, after,(t1-t0)*1e3,(t3-t2)*1e3, rss_mib()); }
