#pragma once
// A file of the lower floor that includes one of the floor above: the check must refuse it.
#include "gateway/high/above.h"
