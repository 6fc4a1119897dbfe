//! [`observer_fn`]: a closure as an [`Observer`](crate::Observer), with its argument type
//! inferred.

use crate::observer::{Control, Event};

/// The closure `f` as an [`Observer`](crate::Observer), so that its argument needs no type
/// annotation.
///
/// Any `FnMut(&Event<'_>) -> Control + Send` closure is an [`Observer`](crate::Observer), but
/// passed straight to [`Executor::observe`](crate::Executor::observe) an unannotated `|e| ...`
/// does not compile: the compiler infers its argument's type from the call, not from the
/// `Observer` impl, so it picks one lifetime where the impl needs any, and reports "type mismatch
/// in closure arguments" (E0631, with a hint that does not help). Writing `|e: &Event<'_>| ...`
/// fixes it, and so does passing the closure through this function, whose bound names the
/// signature:
///
/// ```
/// use dynas_search::{
///     Budget, Control, Event, Executor, Nsga2, Nsga2Config, Objective, TableProblem, observer_fn,
/// };
///
/// # fn main() -> dynas_search::Result<()> {
/// # let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/../dynas-data/data/nb201/nb201_hw.csv");
/// let problem = TableProblem::from_csv(
///     csv,
///     vec![Objective::minimize("raspi4_latency"), Objective::maximize("acc_cifar100")],
/// )?;
/// let mut generations = 0;
/// let nsga2 = Nsga2::new(Nsga2Config::default())?;
/// let result = Executor::new(&problem, nsga2, Budget::evaluations(200)?)
///     .seed(1)
///     // No annotation on `e`: `observer_fn` gives the closure its signature.
///     .observe(observer_fn(move |e| {
///         if let Event::Generation { .. } = e {
///             generations += 1;
///         }
///         if generations < 3 { Control::Continue } else { Control::Stop("enough".into()) }
///     }))
///     .run();
/// // The observer stopped the search after its third generation.
/// assert!(result.is_err());
/// # Ok(()) }
/// ```
pub fn observer_fn<F>(f: F) -> F
where
    F: FnMut(&Event<'_>) -> Control + Send,
{
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unannotated_closure_is_an_observer() {
        let mut seen = 0;
        let event = Event::Generation {
            generation: 4,
            evaluations: 40,
            front_size: 3,
        };
        {
            let mut observer = observer_fn(|e| {
                if let Event::Generation { generation, .. } = e {
                    seen = *generation;
                }
                Control::Continue
            });
            assert_eq!(
                crate::Observer::on_event(&mut observer, &event).expect("closure"),
                Control::Continue
            );
        }
        assert_eq!(seen, 4);
    }
}
