#pragma once
// The floor above.
