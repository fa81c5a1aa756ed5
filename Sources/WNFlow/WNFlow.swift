// WNFlow
