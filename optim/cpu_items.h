/* A work item of the one-pass CPU loops (see optim/cpu_items.py): a contiguous run of
 * elements of one stacked tensor that belongs to one config. */
#include <stdint.h>

typedef struct {
    int64_t tensor; /* index into the pointer tables */
    int64_t config; /* index into the per-config hyperparameters */
    int64_t begin;  /* element range inside the tensor */
    int64_t end;
} Item;
