/* SPDX-License-Identifier: MIT */
/* Example plan (what pvlab/verify/encode.py generates): a 32-bit guest scenario pinning an L3
 * above 4 GiB with slot 3 -> L2, as dom0 (vCPU 0 initialised, no VM-assist). */
static const struct pl_frame PL_FRAMES[] = {
    { FK_HIGH, 0, 0 },   /* 0: l3 */
    { FK_LOW, 0, 32 },   /* 1: l2, below 4 GiB */
};
static const struct pl_entry PL_ENTRIES[] = {
    { 0, 3, 2, 0, 0x1 }, /* l3[3] = l2 | P */
};
static const struct pl_step PL_STEPS[] = {
    { 0, OP_PIN, 0, 3, 0, 0, 0 },   /* step 0: pin l3 level 3 */
    { 1, OP_READ, 0, 3, 0, 0, 0 },  /* step 1: read back l3[3] */
};
static const struct pl_scn PL_SCNS[] = {
    { 1, MODE_DOM0, 32, 1, 0, 2, 0, 1, 0, 2, 0 },
};
#define PL_NSCN 1
