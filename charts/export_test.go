package charts

// CounterValue is counterValue for the package's external tests.
var CounterValue = counterValue
